// {{name}}: a weft app in JavaScript. weft calls `run` with the manifest's
// `[app] args`; what it returns is the unikernel's exit code. It prints
// through the `console` device; to use another device, add its import to
// wit/world.wit (`import weft:devices/clock@0.1.0;`), import it here
// (`import clock from "weft:devices/clock@0.1.0";`) and call it
// (`clock.wallNow()`).
//
// Built by componentize-qjs (QuickJS) with --stub-wasi: JavaScript's own WASI
// imports become traps, because weft gives an app nothing but its devices.
// So no `console.log`: write to the `console` device.
import console from "weft:devices/console@0.1.0";

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

export function run(args) {
  // An uncaught exception would go to (stubbed) stderr and trap without a
  // message: print it on the console instead.
  try {
    print("Hello from {{name}}, a weft app in JavaScript!\n");
    if (args.length > 0) print(`args: ${args.join(" ")}\n`);
    return 0;
  } catch (e) {
    print(`{{name}}: ${e}\n${e.stack ?? ""}`);
    return 1;
  }
}
