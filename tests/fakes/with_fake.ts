/** What the fake's own tests share: a fake GitHub with an octokit client on it, and a rejected request's error. */
import { Octokit } from "@octokit/rest";
import { FakeGithub, type FakeGithubOptions } from "./github.ts";

export const quietLog = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

/** Runs fn against a fresh fake on loopback and a quiet octokit client with its token; closes the fake after. */
export async function withFake(
  fn: (fake: FakeGithub, octokit: Octokit) => Promise<void>,
  opts: Partial<FakeGithubOptions> = {},
): Promise<void> {
  const fake = await FakeGithub.start({ hostname: "127.0.0.1", ...opts });
  try {
    await fn(fake, new Octokit({ auth: fake.token, baseUrl: fake.url, log: quietLog }));
  } finally {
    await fake.close();
  }
}

/** The error a request failed with (octokit's RequestError); throws if it did not fail. */
// deno-lint-ignore no-explicit-any
export async function rejection(p: Promise<unknown>): Promise<{ status: number; message: string; response?: any }> {
  try {
    await p;
  } catch (error) {
    // deno-lint-ignore no-explicit-any
    return error as { status: number; message: string; response?: any };
  }
  throw new Error("Expected the request to fail");
}
