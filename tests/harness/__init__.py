"""Shared machinery for the ephemeral_ports integration, receiver and
package tests, one module per concern:

  base        exit statuses, checks, environment, commands, temp dirs
  scenes      network namespaces and the scenarios run in them
  collectd    running collectd (and the receivers' daemons)
  prometheus  scraping write_prometheus, waiting for a fresh read
  series      the plugin's series read out of a scrape
  pools       the port pool from the sysctls
  ss          the truth from ss
  conntrack   the truth from conntrack and nftables
  sockets     the sockets a test makes
  cgroups     the cgroups a test makes

Tests `import harness as h` and use h.<name>: every public name of the
modules is here.

Environment (set by the automake test harness):
  EP_PLUGIN_SO               the built ephemeral_ports.so
  COLLECTD_BIN               collectd (default /usr/sbin/collectd)
  COLLECTD_STOCK_PLUGIN_DIR  where write_prometheus.so and logfile.so live
  EP_KEEP_TMP=1              keep the temp dirs (for debugging)
  EP_COLLECTD_PRELOAD        LD_PRELOAD for collectd (a sanitizer runtime
                             when the plugin is built with sanitizers)
"""

from .base import *  # noqa: F401,F403
from .prometheus import *  # noqa: F401,F403
from .collectd import *  # noqa: F401,F403
from .pools import *  # noqa: F401,F403
from .ss import *  # noqa: F401,F403
from .sockets import *  # noqa: F401,F403
from .cgroups import *  # noqa: F401,F403
from .series import *  # noqa: F401,F403
from .conntrack import *  # noqa: F401,F403
from .scenes import *  # noqa: F401,F403
