// {{name}}: a weft block filter in JavaScript. It sits between a block
// device and whoever uses it (the app, or the next filter out): every call
// the app makes on the device comes here first, and this filter decides
// what reaches the device below (`below`, the import) and what goes back up
// (what the functions of `block` below return). As made by `weft new`, it
// passes every call through unchanged. The contract each call must keep
// (reads never short, what `flush` promises) is in
// wit/deps/weft-devices/block.wit.
//
// Errors: a device call that fails throws its error-code as a string
// ("io", "invalid-argument" ...); throw one yourself to fail a call. Any
// other exception traps, and weft stops the run naming this filter.
// The device below: an import may not share the name `block` with the
// export.
import below from "weft:devices/block@0.1.0";
import log from "weft:devices/log@0.1.0";

// The topic of this filter's events (`[{{name}}] ...` on stderr).
const TOPIC = "{{name}}";

export const filter = {
  // Called once, before any block call, with the role of the device this
  // filter sits on (`storage`) and its `config` table from weft.toml, as
  // [key, value] pairs. Throwing a string refuses the config.
  configure(device, config) {
    for (const [key] of config) {
      // weft adds sim-seed and sim-phase in a simulation (`weft run --sim`):
      // every filter must accept them (wit/deps/weft-devices/filter.wit).
      // Your config keys go here: `config = { every = 10 }` in weft.toml
      // arrives as ["every", "10"].
      if (key !== "sim-seed" && key !== "sim-phase") {
        throw `unknown key \`${key}\` ({{name}} takes no config keys)`;
      }
    }
    log.append(TOPIC, `on ${device}: passing every call through`, [["device", device]]);
  },
};

export const block = {
  open(name) {
    return below.open(name);
  },
  info(dev) {
    return below.info(dev);
  },
  read(dev, start, count) {
    // The behaviour goes here (and in `write` and `flush`): change the data
    // (a Uint8Array), fail a call (`throw "io"`), count or log operations
    // with `log.append`.
    return below.read(dev, start, count);
  },
  write(dev, start, data) {
    below.write(dev, start, data);
  },
  flush(dev) {
    below.flush(dev);
  },
};
