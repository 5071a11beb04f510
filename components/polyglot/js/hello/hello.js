// hello, in JavaScript: prints what the Rust hello (components/apps/hello)
// prints — a greeting, the wall clock (RFC 3339 UTC, from the weft clock),
// the monotonic clock and 8 random bytes from the weft random device — and
// exits 0. Built by componentize-qjs (QuickJS) with --stub-wasi, so the
// component imports nothing but weft:devices interfaces. With the arguments
// `now N` it is the call-cost benchmark instead (host-posix/benches/
// polyglot.rs): N `clock.monotonicNow` calls timed with that clock, printed
// as `ns/call X`, then the same loop without the call, `ns/loop Y`.
import clock from "weft:devices/clock@0.1.0";
import console from "weft:devices/console@0.1.0";
import random from "weft:devices/random@0.1.0";

// QuickJS as componentize-qjs embeds it has no TextEncoder.
function utf8(s) {
  const out = [];
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}

const print = (s) => console.write(utf8(s));

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

// `wall-now` is nanoseconds since the epoch; as a JS number it is exact to a
// few hundred ns, far below the millisecond printed here.
const rfc3339 = (ns) => new Date(Math.floor(ns / 1e6)).toISOString();

function calls(n) {
  const t0 = clock.monotonicNow();
  for (let i = 0; i < n; i++) clock.monotonicNow();
  const t1 = clock.monotonicNow();
  for (let i = 0; i < n; i++);
  const t2 = clock.monotonicNow();
  const per = (a, b) => (Number(b - a) / n).toFixed(1);
  print(`ns/call ${per(t0, t1)}\nns/loop ${per(t1, t2)}\n`);
}

export function run(args) {
  // An uncaught exception would go to WASI stderr, which --stub-wasi turns
  // into a trap with no message: report it on the console instead.
  try {
    if (args[0] === "now") {
      calls(args.length > 1 ? Number(args[1]) : 100000);
      return 0;
    }
    const wall = clock.wallNow();
    const mono = clock.monotonicNow();
    const bytes = random.fill(8);
    print(
      "Hello from weft!\n" +
        `wall clock: ${rfc3339(wall)}\n` +
        `monotonic: ${mono} ns\n` +
        `random: ${hex(bytes)}\n`,
    );
    return 0;
  } catch (e) {
    print(`hello: ${e}\n${e.stack ?? ""}`);
    return 1;
  }
}
