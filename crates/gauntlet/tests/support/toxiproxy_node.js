// Drives gauntlet's Toxiproxy API with the toxiproxy-node-client package and observes the
// toxics through the proxy with a raw socket. Prints one JSON object of observations; the
// Rust test judges them.
//
// usage: node toxiproxy_node.js API_PORT UPSTREAM_PORT   (NODE_PATH: where the client is)
"use strict";

const net = require("net");
const { Toxiproxy } = require("toxiproxy-node-client");

const [apiPort, upstreamPort] = process.argv.slice(2).map(Number);

function fetchThrough(port) {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    let bytes = 0;
    let reads = 0;
    let tail = "";
    const done = (ended) =>
      resolve({
        bytes,
        reads,
        ended,
        complete: tail.endsWith("END"),
        seconds: Number(process.hrtime.bigint() - started) / 1e9,
      });
    const socket = net.connect(port, "127.0.0.1", () => {
      socket.write("GET / HTTP/1.1\r\nHost: upstream\r\n\r\n");
    });
    socket.setTimeout(15000, () => {
      socket.destroy();
      done("timeout");
    });
    socket.on("data", (chunk) => {
      bytes += chunk.length;
      reads += 1;
      tail = (tail + chunk.toString("latin1")).slice(-3);
    });
    socket.on("end", () => done("closed"));
    socket.on("error", (e) =>
      done(e.code === "ECONNREFUSED" ? "refused" : e.code === "ECONNRESET" ? "reset" : e.code),
    );
  });
}

async function main() {
  const toxiproxy = new Toxiproxy(`http://127.0.0.1:${apiPort}`);
  const seen = {};
  seen.version = await toxiproxy.getVersion();
  const proxy = await toxiproxy.createProxy({
    name: "orders",
    listen: "localhost:0",
    upstream: `127.0.0.1:${upstreamPort}`,
  });
  const port = Number(proxy.listen.split(":").pop());
  seen.listen = proxy.listen;
  seen.clean = await fetchThrough(port);

  const latency = await proxy.addToxic({
    type: "latency",
    stream: "downstream",
    toxicity: 1,
    attributes: { latency: 100, jitter: 0 },
  });
  seen.latency_name = latency.name;
  await latency.update({ attributes: { latency: 400 } });
  seen.latency_updated = (await proxy.getToxic(latency.name)).attributes;
  seen.latency = await fetchThrough(port);
  await latency.remove();

  const limit = await proxy.addToxic({
    name: "cut",
    type: "limit_data",
    stream: "downstream",
    attributes: { bytes: 50 },
  });
  seen.limit_data = await fetchThrough(port);
  await limit.remove();
  seen.after_remove = await fetchThrough(port);

  const all = await toxiproxy.getAll();
  seen.names = Object.keys(all);
  const populated = await toxiproxy.populate([
    { name: "orders", listen: proxy.listen, upstream: `127.0.0.1:${upstreamPort}` },
    { name: "payments", listen: "127.0.0.1:0", upstream: `127.0.0.1:${upstreamPort}` },
  ]);
  seen.populated = Object.keys(populated).sort();
  const payments = Number(populated.payments.listen.split(":").pop());
  seen.payments = await fetchThrough(payments);

  await (await toxiproxy.get("orders")).update({ enabled: false });
  seen.disabled = await fetchThrough(port);
  await toxiproxy.reset();
  seen.after_reset = await fetchThrough(port);

  try {
    await proxy.addToxic({ type: "latency", attributes: { latency: -1 } });
    seen.negative_latency = "accepted";
  } catch (e) {
    seen.negative_latency = String(e.message);
  }
  await proxy.remove();
  seen.deleted = await fetchThrough(port);
  console.log(JSON.stringify(seen));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
