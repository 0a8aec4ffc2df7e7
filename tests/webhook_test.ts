/** Webhook signature and payload parsing, against GitHub's documented test vector and payload shapes. */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { jobWaitSeconds, parseWebhook, verifySignature, WebhookPayloadError } from "../lib/webhook.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const sign = (secret: string, body: string | Uint8Array) =>
  "sha256=" + createHmac("sha256", secret).update(typeof body === "string" ? enc(body) : body).digest("hex");

/** A workflow_job delivery as GitHub documents it ("Webhook events and payloads", workflow_job), trimmed. */
function workflowJob(action: string, over: Record<string, unknown> = {}): string {
  const inProgress = action !== "queued";
  return JSON.stringify({
    action,
    workflow_job: {
      id: 2832853555,
      run_id: 940463255,
      status: action,
      conclusion: null,
      created_at: "2021-11-16T19:01:01Z",
      started_at: inProgress ? "2021-11-16T19:01:22Z" : "2021-11-16T19:01:01Z",
      completed_at: null,
      name: "build",
      labels: ["self-hosted", "linux", "container"],
      runner_id: inProgress ? 1 : null,
      runner_name: inProgress ? "acme-1f2e3d4c" : null,
      runner_group_id: inProgress ? 1 : null,
      runner_group_name: inProgress ? "Default" : null,
      ...over,
    },
    repository: { id: 1, full_name: "acme/app" },
    sender: { login: "octocat" },
  });
}

Deno.test("webhook: GitHub's documented test vector verifies", () => {
  // docs.github.com, "Validating webhook deliveries", "Testing the webhook payload validation".
  const header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
  assert.equal(verifySignature("It's a Secret to Everybody", enc("Hello, World!"), header), true);
  assert.equal(verifySignature("It's a Secret to Everybody", enc("Hello, World!"), header.toUpperCase()), false);
  assert.equal(
    verifySignature(
      "It's a Secret to Everybody",
      enc("Hello, World!"),
      header.replace(/[0-9a-f]{64}$/, (h) => h.toUpperCase()),
    ),
    true,
    "hex digits in either case",
  );
});

Deno.test("webhook: forged, tampered and malformed signatures are refused", () => {
  const secret = "s3cret";
  const body = enc(workflowJob("queued"));
  const good = sign(secret, body);
  assert.equal(verifySignature(secret, body, good), true);
  const refused: [string, string, Uint8Array, string | null][] = [
    ["wrong secret", "other", body, good],
    ["tampered body", secret, enc(workflowJob("queued", { labels: ["gpu"] })), good],
    ["missing header", secret, body, null],
    ["empty header", secret, body, ""],
    ["legacy sha1", secret, body, "sha1=" + createHmac("sha1", secret).update(body).digest("hex")],
    ["no prefix", secret, body, good.slice("sha256=".length)],
    ["non-hex", secret, body, "sha256=" + "zz".repeat(32)],
    ["short", secret, body, good.slice(0, -2)],
    ["long", secret, body, good + "00"],
    ["empty secret", "", body, sign("", body)],
  ];
  for (const [why, s, b, h] of refused) assert.equal(verifySignature(s, b, h), false, why);
});

Deno.test("webhook: workflow_job deliveries are read into the fields the daemon uses", () => {
  assert.deepEqual(parseWebhook("workflow_job", enc(workflowJob("queued"))), {
    kind: "workflow_job",
    action: "queued",
    jobId: 2832853555,
    labels: ["self-hosted", "linux", "container"],
    runnerName: null,
    createdAt: "2021-11-16T19:01:01Z",
    startedAt: "2021-11-16T19:01:01Z",
  });
  const started = parseWebhook("workflow_job", enc(workflowJob("in_progress")));
  assert.equal(started.kind === "workflow_job" && started.runnerName, "acme-1f2e3d4c");
  assert.equal(jobWaitSeconds(started), 21);
  // A queued delivery carries a started_at too; it is no wait.
  assert.equal(jobWaitSeconds(parseWebhook("workflow_job", enc(workflowJob("queued")))), undefined);
  assert.equal(jobWaitSeconds(parseWebhook("workflow_job", enc(workflowJob("completed")))), undefined);
  assert.equal(
    jobWaitSeconds(
      parseWebhook("workflow_job", enc(workflowJob("in_progress", { started_at: "2021-11-16T19:00:00Z" }))),
    ),
    undefined,
    "started before created: clock skew, not a wait",
  );
});

Deno.test("webhook: a form-encoded delivery carries the same JSON in its payload field", () => {
  const form = "payload=" + encodeURIComponent(workflowJob("in_progress"));
  const e = parseWebhook("workflow_job", enc(form));
  assert.equal(e.kind === "workflow_job" && e.action, "in_progress");
});

Deno.test("webhook: ping and unrelated events are recognised without reading the body", () => {
  assert.deepEqual(parseWebhook("ping", enc("not json")), { kind: "ping" });
  assert.deepEqual(parseWebhook("push", enc("not json")), { kind: "ignored", event: "push" });
});

Deno.test("webhook: malformed workflow_job bodies are a typed error, not a crash", () => {
  const cases: [string | null, Uint8Array][] = [
    [null, enc(workflowJob("queued"))],
    ["workflow_job", enc("{not json")],
    ["workflow_job", enc("[]")],
    ["workflow_job", new Uint8Array([0xff, 0xfe, 0x7b])],
    ["workflow_job", enc(JSON.stringify({ action: "queued" }))],
    ["workflow_job", enc(JSON.stringify({ workflow_job: { id: 1, labels: [] } }))],
    ["workflow_job", enc(workflowJob("queued", { id: "1" }))],
    ["workflow_job", enc(workflowJob("queued", { labels: "self-hosted" }))],
    ["workflow_job", enc(workflowJob("queued", { labels: [1] }))],
    ["workflow_job", enc(workflowJob("in_progress", { runner_name: 7 }))],
    ["workflow_job", enc("payload=")],
  ];
  for (const [event, body] of cases) {
    assert.throws(() => parseWebhook(event, body), WebhookPayloadError, new TextDecoder().decode(body));
  }
});
