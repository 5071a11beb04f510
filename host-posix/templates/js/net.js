// {{name}}: a weft net filter in JavaScript. It sits between a network
// device and whoever drives it (the TCP/IP stack, or the next filter out):
// every batch of Ethernet frames sent and received comes here first, and
// this filter decides what reaches the device below (`below`, the import)
// and what goes back up (what the functions of `net` below return). As made
// by `weft new`, it passes every frame through unchanged. The contract is in
// wit/deps/weft-devices/net.wit.
//
// Errors: a device call that fails throws its error-code as a string
// ("io", "invalid-argument" ...); throw one yourself to fail a call. Any
// other exception traps, and weft stops the run naming this filter.
// The device below: an import may not share the name `net` with the export.
import below from "weft:devices/net@0.1.0";
import log from "weft:devices/log@0.1.0";

// The topic of this filter's events (`[{{name}}] ...` on stderr).
const TOPIC = "{{name}}";

export const filter = {
  // Called once, before any net call, with the role of the device this
  // filter sits on (`net`) and its `config` table from the manifest, as
  // [key, value] pairs. Throwing a string refuses the config.
  configure(device, config) {
    for (const [key] of config) {
      // weft adds sim-seed and sim-phase in a simulation (`weft run --sim`):
      // every filter must accept them (wit/deps/weft-devices/filter.wit).
      // Your config keys go here: `config = { drop-every = 10 }` in the
      // manifest arrives as ["drop-every", "10"].
      if (key !== "sim-seed" && key !== "sim-phase") {
        throw `unknown key \`${key}\` ({{name}} takes no config keys)`;
      }
    }
    log.append(TOPIC, `on ${device}: passing every frame through`, [["device", device]]);
  },
};

export const net = {
  open(name) {
    return below.open(name);
  },
  // A filter that changes frames' contents reports checksumOffload false
  // (see net.wit).
  info(dev) {
    return below.info(dev);
  },
  // `frames` is an array of Uint8Array; returns how many frames, from the
  // front, the device accepted.
  send(dev, frames) {
    // The behaviour goes here (and in `receive`): drop, delay, change,
    // duplicate, count or log frames. A frame dropped on purpose still
    // counts as accepted (the wire loses it, not the device).
    return below.send(dev, frames);
  },
  receive(dev, max) {
    return below.receive(dev, max);
  },
};
