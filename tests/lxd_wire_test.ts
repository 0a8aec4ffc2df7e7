/** Pure tests of LXD's wire format decoding (lib/lxd_wire.ts): no daemon needed. */
import assert from "node:assert/strict";
import {
  decodeAnswer,
  fileHeaders,
  imageSource,
  instanceTypesFrom,
  LxdError,
  requireSuccess,
  toInstance,
} from "../lib/lxd_wire.ts";

const response = (status: number, body: unknown) => ({
  status,
  headers: {},
  body: new TextEncoder().encode(typeof body === "string" ? body : JSON.stringify(body)),
});

Deno.test("decodeAnswer turns an LXD error envelope into a readable LxdError", () => {
  const res = response(404, { type: "error", error_code: 404, error: "Instance not found" });
  assert.throws(() => decodeAnswer('start instance "acme-1"', res), (e) => {
    assert.ok(e instanceof LxdError);
    assert.equal(e.status, 404);
    assert.equal(e.operation, 'start instance "acme-1"');
    assert.equal(e.message, 'Cannot start instance "acme-1": LXD returned 404: Instance not found');
    return true;
  });
});

Deno.test("decodeAnswer reports a body that is not LXD's envelope with the HTTP status", () => {
  assert.throws(() => decodeAnswer("list instances", response(502, "<html>bad gateway</html>")), {
    name: "LxdError",
    status: 502,
    message: "Cannot list instances: LXD returned 502: no error text",
  });
  assert.throws(() => decodeAnswer("list instances", response(200, "not json")), { status: 200 });
});

Deno.test("decodeAnswer returns sync metadata and async operations", () => {
  assert.deepEqual(decodeAnswer("x", response(200, { type: "sync", metadata: [1] })), {
    type: "sync",
    metadata: [1],
  });
  const op = { id: "u-1", status: "Running", status_code: 103, err: "", metadata: null };
  assert.deepEqual(
    decodeAnswer("x", response(202, { type: "async", operation: "/1.0/operations/u-1", metadata: op })),
    {
      type: "async",
      operation: { id: "u-1", status: "Running", statusCode: 103, err: "", metadata: {} },
    },
  );
});

Deno.test("requireSuccess carries the failed operation's err", () => {
  const failed = {
    id: "u",
    status: "Failure",
    statusCode: 400,
    err: 'This "instances" entry already exists',
    metadata: {},
  };
  assert.throws(() => requireSuccess('create instance "a"', failed), {
    status: 400,
    message: 'Cannot create instance "a": LXD operation failed: This "instances" entry already exists',
  });
});

Deno.test("toInstance keeps only user.* keys (and the base image), converts created_at to milliseconds", () => {
  const instance = toInstance({
    name: "acme-1",
    type: "container",
    status: "Running",
    created_at: "2026-11-28T23:09:40.100015014Z",
    config: { "user.prefix": "acme", "volatile.base_image": "9791", "image.os": "busybox", "user.n": "1" },
  });
  assert.deepEqual(instance, {
    name: "acme-1",
    type: "container",
    status: "Running",
    createdAt: Date.UTC(2026, 10, 28, 23, 9, 40, 100),
    userKeys: { "user.prefix": "acme", "user.n": "1" },
    baseImage: "9791",
  });
  assert.throws(() => toInstance({ name: "x", type: "container", status: "Running" }), LxdError);
});

Deno.test("instanceTypesFrom reads instance_types, or derives them from the drivers on older servers", () => {
  assert.deepEqual(instanceTypesFrom({ instance_types: ["container", "virtual-machine"] }), [
    "container",
    "virtual-machine",
  ]);
  assert.deepEqual(instanceTypesFrom({ driver: "lxc | qemu" }), ["container", "virtual-machine"]);
  assert.deepEqual(instanceTypesFrom({ driver: "lxc" }), ["container"]);
  assert.deepEqual(instanceTypesFrom({}), []);
});

Deno.test("imageSource tells fingerprints from aliases", () => {
  assert.deepEqual(imageSource("github-runner-test"), { type: "image", alias: "github-runner-test" });
  assert.deepEqual(imageSource("9791f12e280e"), { type: "image", fingerprint: "9791f12e280e" });
  assert.deepEqual(imageSource("beef"), { type: "image", alias: "beef" });
});

Deno.test("fileHeaders sends the mode as 0-prefixed octal and validates ids up front", () => {
  assert.deepEqual(fileHeaders("file", { uid: 1001, gid: 1001, mode: 0o640 }), {
    "content-type": "application/octet-stream",
    "x-lxd-type": "file",
    "x-lxd-write": "overwrite",
    "x-lxd-uid": "1001",
    "x-lxd-gid": "1001",
    "x-lxd-mode": "0640",
  });
  assert.equal(fileHeaders("directory", { mode: 0 })["x-lxd-mode"], "00");
  assert.equal(fileHeaders("directory", {})["x-lxd-write"], undefined);
  assert.throws(() => fileHeaders("file", { mode: 0o4755 }), RangeError);
  assert.throws(() => fileHeaders("file", { uid: -1 }), RangeError);
  assert.throws(() => fileHeaders("file", { gid: 1.5 }), RangeError);
});
