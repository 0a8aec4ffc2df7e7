/** The OpenAPI check itself, on hand-made requests and responses (no server). */
import assert from "node:assert/strict";
import { runnerApi, validateRequest, validateResponse } from "./openapi.ts";

const runner = { id: 7, name: "r", os: "linux", status: "online", busy: false, labels: [{ name: "self-hosted" }] };

Deno.test("a conforming runner list, runner and JIT config request pass", () => {
  const list = { total_count: 1, runners: [runner] };
  assert.deepEqual(validateResponse("GET", "/orgs/acme/actions/runners", 200, list), []);
  assert.deepEqual(validateResponse("GET", "/repos/acme/app/actions/runners/7", 200, runner), []);
  assert.deepEqual(validateRequest("GET", "/orgs/acme/actions/runners", { per_page: "100", page: "2" }, undefined), []);
  const jit = { name: "r", runner_group_id: 1, labels: ["self-hosted"] };
  assert.deepEqual(validateRequest("POST", "/repos/acme/app/actions/runners/generate-jitconfig", {}, jit), []);
});

Deno.test("a malformed response is flagged with the operation and the failing field", () => {
  const noBusy = { total_count: 1, runners: [{ ...runner, busy: undefined }] };
  const [missing] = validateResponse("GET", "/orgs/acme/actions/runners", 200, noBusy);
  assert.match(
    missing,
    /^GET \/orgs\/\{org\}\/actions\/runners \(actions\/list-self-hosted-runners-for-org\) response 200: \/runners\/0 must have required property 'busy'/,
  );
  const [badLabel] = validateResponse("GET", "/orgs/acme/actions/runners/7", 200, {
    ...runner,
    labels: [{ name: "x", type: "weird" }],
  });
  assert.match(badLabel, /\/labels\/0\/type must be equal to one of the allowed values/);
  assert.match(
    validateResponse("POST", "/orgs/acme/actions/runners/generate-jitconfig", 200, {})[0],
    /status not described/,
  );
  assert.match(validateResponse("DELETE", "/orgs/acme/actions/runners/7", 204, { x: 1 })[0], /no body for this status/);
});

Deno.test("malformed requests: missing fields, bad types, unknown paths, methods and query parameters", () => {
  const jitPath = "/orgs/acme/actions/runners/generate-jitconfig";
  assert.match(
    validateRequest("POST", jitPath, {}, { runner_group_id: 1, labels: ["x"] })[0],
    /must have required property 'name'/,
  );
  assert.match(
    validateRequest("POST", jitPath, {}, { name: "r", runner_group_id: 1, labels: [] })[0],
    /\/labels must NOT have fewer than 1 items/,
  );
  assert.match(validateRequest("POST", jitPath, {}, undefined)[0], /missing required request body/);
  assert.match(
    validateRequest("GET", "/orgs/acme/actions/runners/abc", {}, undefined)[0],
    /path parameter "runner_id": "abc" is not an integer/,
  );
  assert.match(
    validateRequest("GET", "/orgs/acme/actions/runners", { page: "x" }, undefined)[0],
    /query parameter "page": "x" is not an integer/,
  );
  assert.match(validateRequest("PATCH", "/orgs/acme/actions/runners", {}, undefined)[0], /method not described/);
  assert.match(validateRequest("GET", "/orgs/acme/actions/secrets", {}, undefined)[0], /unknown path/);
  assert.match(
    validateRequest("GET", "/orgs/acme/actions/runners", new URLSearchParams("perpage=5"), undefined)[0],
    /unknown query parameter "perpage"/,
  );
});

Deno.test("undocumented errors must look like GitHub's basic-error; a GET may answer 304 without a body", () => {
  const notFound = { message: "Not Found", documentation_url: "https://docs.github.com/rest", status: "404" };
  assert.deepEqual(validateResponse("GET", "/orgs/acme/actions/runners/7", 404, notFound), []);
  assert.match(validateResponse("GET", "/orgs/acme/actions/runners/7", 500, "<html>")[0], /undocumented error/);
  assert.deepEqual(validateResponse("GET", "/orgs/acme/actions/runners", 304, undefined), []);
  assert.match(validateResponse("GET", "/orgs/acme/actions/runners", 304, { a: 1 })[0], /a 304 must have no body/);
});

Deno.test("a literal path segment wins over a parameter: downloads is not a runner id", () => {
  assert.equal(
    runnerApi().findOperation("GET", "/orgs/acme/actions/runners/downloads")?.operationId,
    "actions/list-runner-applications-for-org",
  );
  assert.equal(
    runnerApi().findOperation("GET", "/orgs/acme/actions/runners/12")?.operationId,
    "actions/get-self-hosted-runner-for-org",
  );
  assert.equal(
    runnerApi().findOperation("GET", "/orgs/acme/actions/runner-groups")?.template,
    "/orgs/{org}/actions/runner-groups",
  );
});
