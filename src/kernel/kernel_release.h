/* What the running kernel can do, told from its release string alone, so
 * that finding out needs no socket and no port. */
#ifndef EPHEMERAL_PORTS_KERNEL_RELEASE_H
#define EPHEMERAL_PORTS_KERNEL_RELEASE_H

#include <stdbool.h>

#define KERNEL_BOUND_ONLY_SINCE "sock_diag dumps them from Linux 6.8 on"

/* Whether sock_diag dumps bound-only TCP sockets (TCP_BOUND_INACTIVE):
 * release "6.8" or later, as uname(2) gives it ("6.18.44-fc-v1098"). A
 * release that does not parse counts as able: the plugin asks for those
 * sockets in every dump anyway, and this only decides an INFO line. */
bool kernel_dumps_bound_only(const char *release);

#endif
