// libwebp's decoding API (Debian: libwebp-dev to build, libwebp7 to run).
#include <stddef.h>
#include <webp/decode.h>
