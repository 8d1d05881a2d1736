/* version.h: the software version shown by --version and in Pong. */
#ifndef DM_VERSION_H
#define DM_VERSION_H
#define DM_VERSION "0.1.0"
#endif
