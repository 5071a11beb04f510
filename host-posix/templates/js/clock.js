// {{name}}: a weft clock filter in JavaScript. It sits between the clock
// and whoever reads it (the app, or the next filter out): every reading and
// every wait comes here first, and this filter decides what it asks the
// clock below (`below`, the import) and what time it reports (what the
// functions of `clock` below return). As made by `weft new`, it passes every
// call through unchanged. The contract is in wit/deps/weft-devices/clock.wit.
//
// Times are nanoseconds as JS numbers (componentize-qjs maps u64 and s64 to
// numbers): exact up to 2^53 ns, about 104 days. The wall clock (ns since
// 1970) is beyond that, so wall times passing through are rounded to a few
// hundred ns. Any exception traps, and weft stops the run naming this filter.
// The clock below: an import may not share the name `clock` with the export.
import below from "weft:devices/clock@0.1.0";
import log from "weft:devices/log@0.1.0";

// The topic of this filter's events (`[{{name}}] ...` on stderr).
const TOPIC = "{{name}}";

export const filter = {
  // Called once, before any clock call, with the role of the device this
  // filter sits on (`clock`) and its `config` table from weft.toml, as
  // [key, value] pairs. Throwing a string refuses the config.
  configure(device, config) {
    for (const [key] of config) {
      // weft adds sim-seed and sim-phase in a simulation (`weft run --sim`):
      // every filter must accept them (wit/deps/weft-devices/filter.wit).
      // Your config keys go here: `config = { offset = "1h" }` in
      // weft.toml arrives as ["offset", "1h"].
      if (key !== "sim-seed" && key !== "sim-phase") {
        throw `unknown key \`${key}\` ({{name}} takes no config keys)`;
      }
    }
    log.append(TOPIC, `on ${device}: passing every call through`, [["device", device]]);
  },
};

export const clock = {
  // Nanoseconds since an arbitrary origin.
  monotonicNow() {
    // The behaviour goes here (and in `wallNow` and `waitUntil`): shift,
    // stretch, freeze or jitter the time the clock below reports.
    return below.monotonicNow();
  },
  // Nanoseconds since 1970-01-01T00:00:00Z.
  wallNow() {
    return below.wallNow();
  },
  // `deadline` is in this filter's time: a filter that changes time
  // translates it for the clock below, and reports its own time back.
  waitUntil(deadline) {
    return below.waitUntil(deadline);
  },
};
