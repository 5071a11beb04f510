// {{name}}: a weft app in C. weft calls `run` with the manifest's
// `[app] args`; what it returns is the unikernel's exit code. It prints
// through the `console` device; to use another device, add its import to
// wit/world.wit (`import weft:devices/clock@0.1.0;`), run ./build.sh, and
// call it (`weft_devices_clock_wall_now()`; see gen/app.h).
//
// No stdio: printf and friends link wasi-libc's stdout, which imports WASI
// (fd_write ...), and weft gives an app nothing but its devices.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "app.h"

static void print(const char *s) {
  app_list_u8_t bytes = {(uint8_t *)s, strlen(s)};
  weft_devices_console_write(&bytes);
}

uint8_t exports_app_run(app_list_string_t *args) {
  print("Hello from {{name}}, a weft app in C!\n");
  if (args->len > 0) {
    print("args:");
    for (size_t i = 0; i < args->len; i++) {
      app_list_u8_t arg = {args->ptr[i].ptr, args->ptr[i].len};
      print(" ");
      weft_devices_console_write(&arg);
    }
    print("\n");
  }
  // The export owns its arguments (the canonical ABI hands them over).
  app_list_string_free(args);
  return 0;
}
