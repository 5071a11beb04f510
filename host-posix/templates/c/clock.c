// {{name}}: a weft clock filter in C. It sits between the clock and whoever
// reads it (the app, or the next filter out): every reading and every wait
// comes here first, and this filter decides what it asks the clock below
// (the `weft_devices_clock_*` imports) and what time it reports (what the
// `exports_weft_devices_clock_*` functions return). As made by `weft new`,
// it passes every call through unchanged. The contract is in
// wit/deps/weft-devices/clock.wit; the C API in gen/clock_filter.h.
//
// Ownership, as the canonical ABI has it: an export owns the strings and
// lists it is given (free them, or hand them on as a result). No stdio:
// printf and friends import WASI, and weft gives a filter nothing but its
// devices.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock_filter.h"

// The topic of this filter's events (`[{{name}}] ...` on stderr).
static const char TOPIC[] = "{{name}}";

static clock_filter_string_t str(const char *s) {
  return (clock_filter_string_t){(uint8_t *)s, strlen(s)};
}

// A new string: a, then b, then c (for a message that names a key).
static void concat3(clock_filter_string_t *out, const char *a, const clock_filter_string_t *b, const char *c) {
  size_t la = strlen(a), lc = strlen(c);
  out->len = la + b->len + lc;
  out->ptr = malloc(out->len);
  memcpy(out->ptr, a, la);
  memcpy(out->ptr + la, b->ptr, b->len);
  memcpy(out->ptr + la + b->len, c, lc);
}

static bool eq(const clock_filter_string_t *s, const char *z) {
  return s->len == strlen(z) && memcmp(s->ptr, z, s->len) == 0;
}

// Called once, before any clock call, with the role of the device this
// filter sits on (`clock`) and its `config` table from weft.toml.
bool exports_weft_devices_filter_configure(clock_filter_string_t *device,
                                           clock_filter_list_tuple2_string_string_t *config,
                                           clock_filter_string_t *err) {
  for (size_t i = 0; i < config->len; i++) {
    clock_filter_string_t *key = &config->ptr[i].f0;
    // weft adds sim-seed and sim-phase in a simulation (`weft run --sim`):
    // every filter must accept them (wit/deps/weft-devices/filter.wit).
    // Your config keys go here: `config = { offset = "1h" }` in
    // weft.toml arrives as ("offset", "1h") in f0 and f1.
    if (!eq(key, "sim-seed") && !eq(key, "sim-phase")) {
      concat3(err, "unknown key `", key, "` ({{name}} takes no config keys)");
      clock_filter_list_tuple2_string_string_free(config);
      clock_filter_string_free(device);
      return false;
    }
  }
  clock_filter_string_t topic = str(TOPIC), message;
  concat3(&message, "on ", device, ": passing every call through");
  clock_filter_tuple2_string_string_t field = {str("device"), *device};
  clock_filter_list_tuple2_string_string_t fields = {&field, 1};
  weft_devices_log_append(&topic, &message, &fields);
  clock_filter_string_free(&message);
  clock_filter_list_tuple2_string_string_free(config);
  clock_filter_string_free(device);
  return true;
}

// Nanoseconds since an arbitrary origin.
exports_weft_devices_clock_instant_t exports_weft_devices_clock_monotonic_now(void) {
  // The behaviour goes here (and in wall_now and wait_until): shift,
  // stretch, freeze or jitter the time the clock below reports.
  return weft_devices_clock_monotonic_now();
}

// Nanoseconds since 1970-01-01T00:00:00Z.
int64_t exports_weft_devices_clock_wall_now(void) { return weft_devices_clock_wall_now(); }

// `deadline` is in this filter's time: a filter that changes time
// translates it for the clock below, and reports its own time back.
exports_weft_devices_clock_instant_t exports_weft_devices_clock_wait_until(exports_weft_devices_clock_instant_t deadline) {
  return weft_devices_clock_wait_until(deadline);
}
