// libjpeg-turbo's TurboJPEG API (Debian: libturbojpeg0-dev to build, libturbojpeg0 to run).
#include <stddef.h>
#include <turbojpeg.h>
