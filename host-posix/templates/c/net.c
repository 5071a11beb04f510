// {{name}}: a weft net filter in C. It sits between a network device and
// whoever drives it (the TCP/IP stack, or the next filter out): every batch
// of Ethernet frames sent and received comes here first, and this filter
// decides what reaches the device below (the `weft_devices_net_*` imports)
// and what goes back up (what the `exports_weft_devices_net_*` functions
// return). As made by `weft new`, it passes every frame through unchanged.
// The contract is in wit/deps/weft-devices/net.wit; the C API in
// gen/net_filter.h.
//
// Each export returns true for ok, or false with `*err` set. Ownership, as
// the canonical ABI has it: an export owns the strings and lists it is
// given (free them, or hand them on as a result), a list it returns is
// freed after the call, and a list an import returns belongs to the caller.
// No stdio: printf and friends import WASI, and weft gives a filter nothing
// but its devices.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net_filter.h"

// The topic of this filter's events (`[{{name}}] ...` on stderr).
static const char TOPIC[] = "{{name}}";

static net_filter_string_t str(const char *s) {
  return (net_filter_string_t){(uint8_t *)s, strlen(s)};
}

// A new string: a, then b, then c (for a message that names a key).
static void concat3(net_filter_string_t *out, const char *a, const net_filter_string_t *b, const char *c) {
  size_t la = strlen(a), lc = strlen(c);
  out->len = la + b->len + lc;
  out->ptr = malloc(out->len);
  memcpy(out->ptr, a, la);
  memcpy(out->ptr + la, b->ptr, b->len);
  memcpy(out->ptr + la + b->len, c, lc);
}

static bool eq(const net_filter_string_t *s, const char *z) {
  return s->len == strlen(z) && memcmp(s->ptr, z, s->len) == 0;
}

// Called once, before any net call, with the role of the device this
// filter sits on (`net`) and its `config` table from the manifest.
bool exports_weft_devices_filter_configure(net_filter_string_t *device,
                                           net_filter_list_tuple2_string_string_t *config,
                                           net_filter_string_t *err) {
  for (size_t i = 0; i < config->len; i++) {
    net_filter_string_t *key = &config->ptr[i].f0;
    // weft adds sim-seed and sim-phase in a simulation (`weft run --sim`):
    // every filter must accept them (wit/deps/weft-devices/filter.wit).
    // Your config keys go here: `config = { drop-every = 10 }` in the
    // manifest arrives as ("drop-every", "10") in f0 and f1.
    if (!eq(key, "sim-seed") && !eq(key, "sim-phase")) {
      concat3(err, "unknown key `", key, "` ({{name}} takes no config keys)");
      net_filter_list_tuple2_string_string_free(config);
      net_filter_string_free(device);
      return false;
    }
  }
  net_filter_string_t topic = str(TOPIC), message;
  concat3(&message, "on ", device, ": passing every frame through");
  net_filter_tuple2_string_string_t field = {str("device"), *device};
  net_filter_list_tuple2_string_string_t fields = {&field, 1};
  weft_devices_log_append(&topic, &message, &fields);
  net_filter_string_free(&message);
  net_filter_list_tuple2_string_string_free(config);
  net_filter_string_free(device);
  return true;
}

bool exports_weft_devices_net_open(net_filter_string_t *name, exports_weft_devices_net_handle_t *ret,
                                   exports_weft_devices_net_error_code_t *err) {
  bool ok = weft_devices_net_open(name, ret, err);
  net_filter_string_free(name);
  return ok;
}

bool exports_weft_devices_net_info(exports_weft_devices_net_handle_t dev, exports_weft_devices_net_net_info_t *ret,
                                   exports_weft_devices_net_error_code_t *err) {
  // The import's and the export's net-info are distinct types, same fields.
  // A filter that changes frames' contents reports checksum_offload false
  // (see net.wit).
  weft_devices_net_net_info_t i;
  if (!weft_devices_net_info(dev, &i, err)) return false;
  *ret = (exports_weft_devices_net_net_info_t){i.mac, i.mtu, i.checksum_offload};
  return true;
}

// `*ret`: how many frames, from the front, the device accepted.
bool exports_weft_devices_net_send(exports_weft_devices_net_handle_t dev, net_filter_list_list_u8_t *frames,
                                   uint32_t *ret, exports_weft_devices_net_error_code_t *err) {
  // The behaviour goes here (and in receive): drop, delay, change,
  // duplicate, count or log frames. A frame dropped on purpose still counts
  // as accepted (the wire loses it, not the device).
  bool ok = weft_devices_net_send(dev, frames, ret, err);
  net_filter_list_list_u8_free(frames);
  return ok;
}

bool exports_weft_devices_net_receive(exports_weft_devices_net_handle_t dev, uint32_t max,
                                      net_filter_list_list_u8_t *ret, exports_weft_devices_net_error_code_t *err) {
  return weft_devices_net_receive(dev, max, ret, err);
}
