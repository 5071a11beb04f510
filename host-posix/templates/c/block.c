// {{name}}: a weft block filter in C. It sits between a block device and
// whoever uses it (the app, or the next filter out): every call the app
// makes on the device comes here first, and this filter decides what
// reaches the device below (the `weft_devices_block_*` imports) and what
// goes back up (what the `exports_weft_devices_block_*` functions return).
// As made by `weft new`, it passes every call through unchanged. The
// contract each call must keep (reads never short, what `flush` promises)
// is in wit/deps/weft-devices/block.wit; the C API in gen/block_filter.h.
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

#include "block_filter.h"

// The topic of this filter's events (`[{{name}}] ...` on stderr).
static const char TOPIC[] = "{{name}}";

static block_filter_string_t str(const char *s) {
  return (block_filter_string_t){(uint8_t *)s, strlen(s)};
}

// A new string: a, then b, then c (for a message that names a key).
static void concat3(block_filter_string_t *out, const char *a, const block_filter_string_t *b, const char *c) {
  size_t la = strlen(a), lc = strlen(c);
  out->len = la + b->len + lc;
  out->ptr = malloc(out->len);
  memcpy(out->ptr, a, la);
  memcpy(out->ptr + la, b->ptr, b->len);
  memcpy(out->ptr + la + b->len, c, lc);
}

static bool eq(const block_filter_string_t *s, const char *z) {
  return s->len == strlen(z) && memcmp(s->ptr, z, s->len) == 0;
}

// Called once, before any block call, with the role of the device this
// filter sits on (`storage`) and its `config` table from weft.toml.
bool exports_weft_devices_filter_configure(block_filter_string_t *device,
                                           block_filter_list_tuple2_string_string_t *config,
                                           block_filter_string_t *err) {
  for (size_t i = 0; i < config->len; i++) {
    block_filter_string_t *key = &config->ptr[i].f0;
    // weft adds sim-seed and sim-phase in a simulation (`weft run --sim`):
    // every filter must accept them (wit/deps/weft-devices/filter.wit).
    // Your config keys go here: `config = { every = 10 }` in weft.toml
    // arrives as ("every", "10") in f0 and f1.
    if (!eq(key, "sim-seed") && !eq(key, "sim-phase")) {
      concat3(err, "unknown key `", key, "` ({{name}} takes no config keys)");
      block_filter_list_tuple2_string_string_free(config);
      block_filter_string_free(device);
      return false;
    }
  }
  block_filter_string_t topic = str(TOPIC), message;
  concat3(&message, "on ", device, ": passing every call through");
  block_filter_tuple2_string_string_t field = {str("device"), *device};
  block_filter_list_tuple2_string_string_t fields = {&field, 1};
  weft_devices_log_append(&topic, &message, &fields);
  block_filter_string_free(&message);
  block_filter_list_tuple2_string_string_free(config);
  block_filter_string_free(device);
  return true;
}

bool exports_weft_devices_block_open(block_filter_string_t *name, exports_weft_devices_block_handle_t *ret,
                                     exports_weft_devices_block_error_code_t *err) {
  bool ok = weft_devices_block_open(name, ret, err);
  block_filter_string_free(name);
  return ok;
}

bool exports_weft_devices_block_info(exports_weft_devices_block_handle_t dev, exports_weft_devices_block_geometry_t *ret,
                                     exports_weft_devices_block_error_code_t *err) {
  // The import's and the export's geometry are distinct types, same fields.
  weft_devices_block_geometry_t g;
  if (!weft_devices_block_info(dev, &g, err)) return false;
  *ret = (exports_weft_devices_block_geometry_t){g.sector_size, g.sector_count, g.read_only};
  return true;
}

bool exports_weft_devices_block_read(exports_weft_devices_block_handle_t dev, uint64_t start, uint32_t count,
                                     block_filter_list_u8_t *ret, exports_weft_devices_block_error_code_t *err) {
  // The behaviour goes here (and in write and flush): change the data, fail
  // a call (`*err = WEFT_DEVICES_TYPES_ERROR_CODE_IO; return false;`), count
  // or log operations with weft_devices_log_append.
  return weft_devices_block_read(dev, start, count, ret, err);
}

bool exports_weft_devices_block_write(exports_weft_devices_block_handle_t dev, uint64_t start,
                                      block_filter_list_u8_t *data, exports_weft_devices_block_error_code_t *err) {
  bool ok = weft_devices_block_write(dev, start, data, err);
  block_filter_list_u8_free(data);
  return ok;
}

bool exports_weft_devices_block_flush(exports_weft_devices_block_handle_t dev, exports_weft_devices_block_error_code_t *err) {
  return weft_devices_block_flush(dev, err);
}
