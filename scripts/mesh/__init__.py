"""mesh-test: start a local mesh of `mule` nodes and measure how broadcasts spread.

What it measures
----------------
The script starts N `mule node` processes on this machine (127.0.0.1, or one
network namespace per node with --netns), wires them into a topology, waits
until every node has a peer, sends M broadcast messages from one sender node
and then watches every node's store until each one holds every message (or a
timeout expires).  From that it reports:

* formation_s       seconds from the first node launch until every node had a
                    peer (the status `mule status --json` prints, asked
                    over the control socket);
* first_coverage_s  seconds from the first send until some other node held a
                    message;
* full_coverage_s   seconds from the first send until every node held every
                    message (null if the timeout expired first);
* coverage          fraction of (node, message) pairs delivered, sender excluded;
* hop_histogram     how many relays each delivered copy went through;
* content_transfers, duplicates, duplicate_ratio, bytes_on_wire
                    summed from every node's counters at the end;
* peak_rss_kib      VmHWM of every node process, read just before shutdown.

Delivery times come from each node's own `received_ms` (same clock, same
machine), so they do not depend on how often the script polls; when a node
does not report it, the time of the poll that first saw the message is used.

Outputs
-------
One JSON summary on stdout (progress goes to stderr), and in the output
directory: summary.json, coverage.svg (coverage over time), details.json
(per node / per message / per delivery data) and, on failure, logs/ with the
logs of the nodes that failed.

Exit codes: 0 full coverage reached, 1 coverage timed out (or nodes died),
2 setup error (bad options, missing binary, nodes failing to start, mesh not
forming), 128+signal when interrupted (130 for Ctrl-C, 143 for SIGTERM).

Package layout
--------------
cli        command line: options, defaults, exit codes (`main`)
run        the experiment flow: prepare, start, form, send, watch, stop
report     summary.json, details.json and coverage.svg of a finished run
procs      node processes: the Node record, launching, signals and cleanup
mulecli    short-lived `mule id/send` calls (and status/list for callers that want the CLI)
control    status and list polls straight over each node's control socket
netns      the private network-namespace lab behind --netns
ports      listening ports known before any node starts
topology   who bootstraps from whom (pure)
status     reading `mule status --json` objects (pure)
deliveries sent messages, deliveries and `mule list` parsing (pure)
stats      timing and counter statistics for the summary (pure)
chart      the coverage SVG and its labels (pure)
payload    message contents of an exact size
files      locating the binary, output directory, log tails
parallel   running one call per node on a thread pool
progress   timestamped progress lines on stderr
errors     the exceptions that decide the exit code
"""
