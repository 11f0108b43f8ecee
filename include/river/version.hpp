#pragma once

/// River's version: major, minor and patch, and all three as one number (MMmmpp).
#define RIVER_VERSION_MAJOR 0
#define RIVER_VERSION_MINOR 1
#define RIVER_VERSION_PATCH 0
#define RIVER_VERSION (RIVER_VERSION_MAJOR * 10000 + RIVER_VERSION_MINOR * 100 + RIVER_VERSION_PATCH)
