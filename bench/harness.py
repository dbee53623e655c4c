#!/usr/bin/env python3
"""bench/harness.py -- svc and its peers (supervisord, runit, s6) and the physical floor,
measured side by side on one machine, on the method of ../shared/bench/anchors.py so that the
figures compare with that table.

Usage (Linux, python3 >= 3.11, stdlib only, run as root so /proc/PID/smaps_rollup of every
supervisor is readable):
  python3 bench/harness.py setup [--no-install] [--svc-src worktree|head]
        install the peers from the registries (pip install supervisor; apt-get install -y runit s6),
        build svc (cargo build --release) and pin the binary; print every version
  python3 bench/harness.py versions
  python3 bench/harness.py one PEER N [--log]
        one measurement, one JSON line. PEER: floor supervisord runit s6 svc svc-defaults
        svc-stamped (log test only: svc with log-timestamps on the writer)
  python3 bench/harness.py all [--peers floor,svc,...] [--ns 10,100,1000] [--rounds 3] [--budget S]
        every peer x N, plus the log test (N=1) and (with svc) the hostile-requests test at the
        largest N, ROUNDS rounds; writes bench/RESULTS.md and bench/results.jsonl and prints the table
  python3 bench/harness.py hostile [--n 1000] [--clients 3] [--rounds 3] [--out FILE.md]
        only the hostile-requests test: `svc status` latency while CLIENTS raw clients send
        `status` naming one 65,000-character unknown target in a loop, and without them;
        writes bench/RESULTS-hostile.md and bench/results-hostile.jsonl
  python3 bench/harness.py deps [--n 1000] [--levels 10] [--variants deps,notify,plain,health-exec,health-tcp]
                                [--rounds 3] [--out FILE.md]
        only the dependencies/readiness/health test (issue 12), with N programs that each run
        notify-sleep (a C helper compiled with cc: READY=1 to $NOTIFY_SOCKET, then pause()):
        time until `svc status --json` shows all RUNNING and ready with LEVELS levels of
        depends-on (deps; also deps-names, deps-one), without (notify), and without readiness
        (plain); the idle window for those; the daemon's CPU with a 10 s health check on every
        program (health-exec: exec "true"; health-tcp: tcp to one listener of the harness);
        writes bench/RESULTS-deps.md and bench/results-deps.jsonl. Part of `all` (at the
        largest N) when svc is among the peers
  python3 bench/harness.py remote [--rounds 20] [--out FILE.md]
        `svc -H HOST status` through a private sshd on 127.0.0.1 (openssh-server), cold (new ssh
        connection) and warm (shared master connection), against `ssh HOST true` and a local
        `svc status`; writes bench/RESULTS-remote.md and bench/results-remote.jsonl

Env: BENCH_IDLE_S (default 30): idle window; the context switches after 20 s are recorded too
     (the anchors' window).  BENCH_SVC: an svc binary to use instead of building one.
     BENCH_HOSTILE_S (default 10): how long `svc status` is probed with and without hostile clients.
     BENCH_HEALTH_S (default 60): the window over which the health checks' CPU is measured.
Every process the harness starts is killed on exit, Ctrl-C or error (process groups of every
launched supervisor, every `sleep 7dddd`, every log writer).
"""
import atexit
import ctypes
import datetime
import glob
import hashlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS_MD = os.path.join(HERE, 'RESULTS.md')
RESULTS_JSONL = os.path.join(HERE, 'results.jsonl')
RESULTS_HOSTILE_MD = os.path.join(HERE, 'RESULTS-hostile.md')
PIN_DIR = '/tmp/svc-bench-bin'            # pinned svc binary (others rebuild target/ meanwhile)
HEAD_SRC = '/tmp/svc-bench-src'           # `--svc-src head`: a clean export of HEAD
LOG_BYTES = 200_000_000
YES_LINE = '0123456789abcdefghij0123456789abcdefghij0123456789abcdefghij'
WRITER = f'yes {YES_LINE} | head -c {LOG_BYTES}'
CLK = os.sysconf('SC_CLK_TCK')
IDLE_S = float(os.environ.get('BENCH_IDLE_S', '30'))
ANCHOR_IDLE_S = 20.0
START_TIMEOUT = 180.0
CMD_TIMEOUT = 300.0
LOG_TIMEOUT = 240.0
NS = (10, 100, 1000)
HOSTILE_S = float(os.environ.get('BENCH_HOSTILE_S', '10'))
HOSTILE_TARGET_LEN = 65_000
HOSTILE_CLIENTS = 3
PEERS = ('floor', 'supervisord', 'runit', 's6', 'svc', 'svc-defaults')
LOG_PEERS = ('floor', 'supervisord', 'runit', 's6', 'svc')
perf = time.perf_counter
NOTIFIER = 'notify-sleep'                 # the deps test's program (a C helper built at setup)
SLEEPERS = (b'sleep', NOTIFIER.encode())
DEPS_LEVELS = 10
DEPS_VARIANTS = ('deps', 'notify', 'plain', 'health-exec', 'health-tcp')
DEPS_EXTRA = ('deps-names', 'deps-one')   # other spellings of the same levels (`--variants`)
HEALTH_S = float(os.environ.get('BENCH_HEALTH_S', '60'))
RESULTS_DEPS_MD = os.path.join(HERE, 'RESULTS-deps.md')
# sd_notify's READY=1 on $NOTIFY_SOCKET, then sleep forever: python3 -c would cost ~10 MB per
# program, and a sh loop cannot send a datagram. argv[1] (7dddd) is only there to be found.
NOTIFY_C = r'''
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(void) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (path && *path) {
        struct sockaddr_un a;
        size_t n = strlen(path);
        memset(&a, 0, sizeof a);
        a.sun_family = AF_UNIX;
        if (n < sizeof a.sun_path) {
            memcpy(a.sun_path, path, n);
            if (a.sun_path[0] == '@')
                a.sun_path[0] = 0;          /* abstract namespace */
            int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            if (fd >= 0) {
                sendto(fd, "READY=1", 7, 0, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + n);
                close(fd);
            }
        }
    }
    for (;;)
        pause();
}
'''


def arg(i):
    """Program i runs `sleep 7<i:04d>`: a unique argument finds (and kills) exactly ours."""
    return '7%04d' % i


# ----------------------------------------------------------------- /proc helpers
def read(path):
    try:
        with open(path, 'rb', buffering=0) as f:
            return f.read()
    except OSError:
        return None


def cmdline(pid):
    c = read(f'/proc/{pid}/cmdline')
    return c.split(b'\0') if c else None


def sleep_arg(pid):
    """'7dddd' if pid is `sleep 7dddd` or `notify-sleep 7dddd` (the deps test's programs),
    else None (zombies have an empty cmdline)."""
    p = cmdline(pid)
    if p and len(p) >= 2 and p[0].rsplit(b'/', 1)[-1] in SLEEPERS and len(p[1]) == 5 \
            and p[1][:1] == b'7' and p[1].isdigit():
        return p[1].decode()
    return None


def scan_sleeps():
    out = {}
    for name in os.listdir('/proc'):
        if name.isdigit():
            a = sleep_arg(name)
            if a is not None:
                out[a] = int(name)
    return out


def is_writer(pid):
    p = cmdline(pid)
    if not p:
        return False
    base = p[0].rsplit(b'/', 1)[-1]
    return (base == b'yes' and YES_LINE.encode() in p) or \
        (base == b'head' and str(LOG_BYTES).encode() in p)


def stat(pid):
    """(comm, state, ppid, cpu_ticks, starttime, pgid) or None."""
    s = read(f'/proc/{pid}/stat')
    if not s:
        return None
    s = s.decode(errors='replace')
    comm = s[s.index('(') + 1:s.rindex(')')]
    f = s[s.rindex(')') + 2:].split()
    return comm, f[0], int(f[1]), int(f[11]) + int(f[12]), int(f[19]), int(f[2])


def children(pid):
    kids = []
    for t in glob.glob(f'/proc/{pid}/task/*/children'):
        d = read(t)
        if d:
            kids += [int(x) for x in d.split()]
    return kids


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        for c in children(todo.pop()):
            out.append(c)
            todo.append(c)
    return out


def alive(pid):
    st = stat(pid)
    return st is not None and st[1] != 'Z'


def mem_kb(pids):
    pss = rss = 0
    for p in pids:
        d = read(f'/proc/{p}/smaps_rollup')
        if not d:
            continue
        for line in d.decode().splitlines():
            if line.startswith('Pss:'):
                pss += int(line.split()[1])
            elif line.startswith('Rss:'):
                rss += int(line.split()[1])
    return pss, rss


def cpu_s(pids):
    return sum(st[3] for p in pids if (st := stat(p))) / CLK


def ctxsw(pids):
    """(voluntary, involuntary) context switches summed over every thread of pids."""
    v = nv = 0
    for p in pids:
        for st in glob.glob(f'/proc/{p}/task/*/status'):
            d = read(st)
            if not d:
                continue
            for line in d.decode().splitlines():
                if line.startswith('voluntary_ctxt_switches'):
                    v += int(line.split()[1])
                elif line.startswith('nonvoluntary_ctxt_switches'):
                    nv += int(line.split()[1])
    return v, nv


def reap():
    """The harness is a child subreaper: orphans land on it, so reap them."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_pids(pids, sig=signal.SIGKILL):
    for p in pids:
        try:
            os.kill(p, sig)
        except (ProcessLookupError, PermissionError):
            pass


def kill_group_of(pid):
    """SIGKILL pid's whole process group (never our own group), else pid alone."""
    st = stat(pid)
    if st and st[5] > 1 and st[5] != os.getpgrp():
        try:
            os.killpg(st[5], signal.SIGKILL)
            return
        except (ProcessLookupError, PermissionError):
            pass
    kill_pids([pid])


def kill_our_sleeps(timeout=10.0):
    """Kill every `sleep 7dddd` and log writer (unique args => ours) by process group."""
    pids = list(scan_sleeps().values())
    pids += [int(n) for n in os.listdir('/proc') if n.isdigit() and is_writer(n)]
    for p in pids:
        kill_group_of(p)
    end = perf() + timeout
    while perf() < end:
        reap()
        if not any(alive(p) and (sleep_arg(p) or is_writer(p)) for p in pids):
            break
        time.sleep(0.01)
    return len(pids)


def run(argv, timeout=CMD_TIMEOUT, env=None, **kw):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout, text=True, env=env, **kw)


def tool(name):
    """Real path of a tool (skip pyenv's bash shims, which add ~100 ms per call)."""
    cand = os.path.join(os.path.dirname(os.path.realpath(sys.executable)), name)
    if os.access(cand, os.X_OK):
        return cand
    try:
        p = run(['pyenv', 'which', name], timeout=10)
        if p.returncode == 0 and p.stdout.strip():
            return p.stdout.strip().splitlines()[-1]
    except Exception:
        pass
    return shutil.which(name) or name


def write_exec(path, text):
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, 0o755)


def program_sh(i, log):
    """Shell text that becomes `sleep 7<i:04d>` (after the writer in log mode)."""
    if log and i == 0:
        return f'{WRITER}; exec sleep {arg(i)}'
    return f'exec sleep {arg(i)}'


def dir_bytes(d, skip=('config', 'lock', 'state')):
    n = 0
    for name in os.listdir(d):
        p = os.path.join(d, name)
        if name not in skip and os.path.isfile(p):
            try:
                n += os.stat(p).st_size
            except FileNotFoundError:
                pass
    return n


def content_ok(paths):
    """True if the concatenated files are a prefix of the writer's exact output."""
    line = (YES_LINE + '\n').encode()
    block = line * (1 << 14)                 # 999,424 B; the stream is periodic in len(line)
    off = 0
    for p in paths:
        with open(p, 'rb') as f:
            while True:
                b = f.read(len(block))
                if not b:
                    break
                k = off % len(line)
                exp = (block + block)[k:k + len(b)]
                if b != exp:
                    return False
                off += len(b)
    return True


# ----------------------------------------------------------------- process registry
LAUNCHED = []       # Popen objects of every supervisor/floor we started
TEMPDIRS = []


def cleanup_everything():
    """Last line of defence (exit, Ctrl-C, error): kill every group we launched, every
    descendant, every sleep 7dddd and writer; remove temp dirs."""
    for p in LAUNCHED:
        try:
            if p.poll() is None or alive(p.pid):
                for d in descendants(p.pid):
                    kill_group_of(d)
                try:
                    os.killpg(p.pid, signal.SIGKILL)     # start_new_session: pgid == pid
                except (ProcessLookupError, PermissionError):
                    pass
        except Exception:
            pass
    try:
        kill_our_sleeps(5.0)
    except Exception:
        pass
    reap()
    for d in TEMPDIRS:
        shutil.rmtree(d, ignore_errors=True)


def _on_signal(signum, _frame):
    raise KeyboardInterrupt(f'signal {signum}')


# ----------------------------------------------------------------- adapters
class Adapter:
    """One per peer. setup() writes the config under d; start() launches and returns at
    once; the rest are probes and actions. self.proc is the root process."""
    name = '?'
    full = True          # False: only start / confirm / stop (svc-defaults)

    def setup(self, d, n, log=False):
        self.d, self.n, self.log, self.proc = d, n, log, None
        self._out = open(os.path.join(d, 'supervisor.out'), 'w')

    def launch(self, argv, env=None):
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=subprocess.STDOUT, start_new_session=True, env=env)
        LAUNCHED.append(self.proc)

    def after_launch(self):
        """Called right after start(); returns extra fields for the result."""
        return {}

    def child_pid(self, i):
        return scan_sleeps().get(arg(i))

    def root_and_kids(self, kid_comm):
        if not self.proc or not alive(self.proc.pid):
            return []
        out = [self.proc.pid]
        for c in children(self.proc.pid):
            st = stat(c)
            if st and st[0] == kid_comm:
                out.append(c)
        return out

    def wait_gone(self, pids, timeout):
        end = perf() + timeout
        while perf() < end:
            reap()
            if not any(alive(p) for p in pids):
                return True
            time.sleep(0.02)
        return False

    def term_root(self, sig=signal.SIGTERM):
        if self.proc and alive(self.proc.pid):
            os.kill(self.proc.pid, sig)
            if not self.wait_gone([self.proc.pid], 60):
                kill_pids([self.proc.pid])


class Supervisord(Adapter):
    name = 'supervisord'

    def setup(self, d, n, log=False):
        super().setup(d, n, log)
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        minfds = max(1024, min(hard if hard > 0 else 65536, 8 * n + 256))
        self.conf = os.path.join(d, 'supervisord.conf')
        L = ['[unix_http_server]', f'file={d}/supervisor.sock', '',
             '[supervisord]', 'nodaemon=true', f'logfile={d}/supervisord.log',
             f'pidfile={d}/supervisord.pid', f'childlogdir={d}',
             f'minfds={minfds}', f'minprocs={n + 200}', '',
             '[rpcinterface:supervisor]',
             'supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface', '',
             '[supervisorctl]', f'serverurl=unix://{d}/supervisor.sock', '']
        for i in range(n):
            if log and i == 0:
                cmd = f'sh -c "{program_sh(i, log)}"'
                self.logfile = f'{d}/p0000.out'
                out = [f'stdout_logfile={self.logfile}', 'stdout_logfile_maxbytes=0',
                       'stdout_logfile_backups=0', 'stderr_logfile=NONE']
            else:
                cmd = f'sleep {arg(i)}'
                out = ['stdout_logfile=NONE', 'stderr_logfile=NONE']
            L += [f'[program:p{i:04d}]', f'command={cmd}', 'startsecs=0', 'autorestart=true',
                  'stopwaitsecs=10'] + out + ['']
        with open(self.conf, 'w') as f:
            f.write('\n'.join(L))
        self.ctl = tool('supervisorctl')

    def start(self):
        self.launch([tool('supervisord'), '-n', '-c', self.conf])

    def status_listing(self):
        return run([self.ctl, '-c', self.conf, 'status']).stdout

    def all_running(self):
        return sum(1 for l in self.status_listing().splitlines() if ' RUNNING ' in l) == self.n

    def supervisor_pids(self):
        return [self.proc.pid] if self.proc and alive(self.proc.pid) else []

    def stop_all(self):
        return run([self.ctl, '-c', self.conf, 'stop', 'all'])

    def shutdown(self):
        self.term_root()

    def log_files(self):
        return [self.logfile] if os.path.exists(self.logfile) else []


class Runit(Adapter):
    name = 'runit'

    def setup(self, d, n, log=False):
        super().setup(d, n, log)
        self.sv = os.path.join(d, 'service')
        self.dirs = []
        for i in range(n):
            sd = os.path.join(self.sv, f'p{i:04d}')
            os.makedirs(sd)
            write_exec(os.path.join(sd, 'run'), f'#!/bin/sh\n{program_sh(i, log)}\n')
            self.dirs.append(sd)
        if log:
            self.logdir = os.path.join(d, 'log-p0000')
            os.makedirs(self.logdir)
            with open(os.path.join(self.logdir, 'config'), 'w') as f:
                f.write('s0\n')          # no rotation
            os.makedirs(os.path.join(self.dirs[0], 'log'))
            write_exec(os.path.join(self.dirs[0], 'log', 'run'),
                       f'#!/bin/sh\nexec svlogd {self.logdir}\n')

    def start(self):
        self.launch(['runsvdir', self.sv])

    def status_listing(self):
        return run(['sv', 'status'] + self.dirs).stdout

    def all_running(self):
        return sum(1 for l in self.status_listing().splitlines() if l.startswith('run: ')) == self.n

    def supervisor_pids(self):
        return self.root_and_kids('runsv')

    def stop_all(self):
        return run(['sv', '-w', '60', 'stop'] + self.dirs)

    def shutdown(self):
        pids = self.supervisor_pids()
        if pids:
            os.kill(pids[0], signal.SIGHUP)   # runsvdir: TERM every runsv, then exit
            if not self.wait_gone(pids, 60):
                kill_pids(pids)

    def log_files(self):
        return sorted(os.path.join(self.logdir, f) for f in os.listdir(self.logdir)
                      if f not in ('config', 'lock', 'state'))


class S6(Adapter):
    name = 's6'

    def setup(self, d, n, log=False):
        super().setup(d, n, log)
        self.scan = os.path.join(d, 'scan')
        self.dirs = []
        for i in range(n):
            sd = os.path.join(self.scan, f'p{i:04d}')
            os.makedirs(sd)
            write_exec(os.path.join(sd, 'run'), f'#!/bin/sh\n{program_sh(i, log)}\n')
            self.dirs.append(sd)
        if log:
            self.logdir = os.path.join(d, 'log-p0000')
            os.makedirs(self.logdir)
            os.makedirs(os.path.join(self.dirs[0], 'log'))
            # s6-log caps s at 256 MiB: the largest file size, i.e. no rotation for 200 MB.
            write_exec(os.path.join(self.dirs[0], 'log', 'run'),
                       f'#!/bin/sh\nexec s6-log n20 s268435455 {self.logdir}\n')

    def start(self):
        self.launch(['s6-svscan', '-c', str(max(1000, 2 * self.n + 16)), self.scan])

    def status_listing(self):
        return run(['sh', '-c', 'for d in "$1"/*; do s6-svstat "$d"; done', 'sh', self.scan]).stdout

    def all_running(self):
        return sum(1 for l in self.status_listing().splitlines() if l.startswith('up ')) == self.n

    def supervisor_pids(self):
        return self.root_and_kids('s6-supervise')

    def stop_all(self):
        # s6-svc takes one servicedir: loop -d, then one s6-svwait over all of them.
        return run(['sh', '-c', 'for d; do s6-svc -d "$d"; done; exec s6-svwait -D -a "$@"',
                    'sh'] + self.dirs)

    def shutdown(self):
        pids = self.supervisor_pids()
        if pids:
            os.kill(pids[0], signal.SIGTERM)  # == s6-svscanctl -t
            if not self.wait_gone(pids, 60):
                kill_pids(pids)

    def log_files(self):
        return sorted(os.path.join(self.logdir, f) for f in os.listdir(self.logdir)
                      if f not in ('lock', 'state')) if os.path.isdir(self.logdir) else []


class Floor(Adapter):
    """No supervisor: plain sh forking N sleeps / writing straight to a file."""
    name = 'floor'

    def start(self):
        if self.log:
            self.logfile = os.path.join(self.d, 'floor.out')
            self.launch(['sh', '-c', f'{WRITER} > {self.logfile}'])
        else:
            self.launch(['sh', '-c', f'i=0; while [ $i -lt {self.n} ]; do '
                                     f'sleep $((70000+i)) & i=$((i+1)); done'])

    def all_running(self):
        s = scan_sleeps()
        return all(arg(i) in s for i in range(self.n))

    def supervisor_pids(self):
        return []

    def status_listing(self):
        return None

    def stop_all(self):
        kill_pids(list(scan_sleeps().values()), signal.SIGTERM)
        return None

    def shutdown(self):
        pass

    def log_files(self):
        return [self.logfile] if os.path.exists(self.logfile) else []


def svc_bin():
    p = os.environ.get('BENCH_SVC') or os.path.join(PIN_DIR, 'svc')
    if not os.access(p, os.X_OK):
        raise RuntimeError(f'no svc binary at {p}: run `python3 bench/harness.py setup` first')
    return p


class Svc(Adapter):
    """svc: one `svc daemon`, isolated by SVC_CONFIG/SVC_SOCKET/SVC_STATE_DIR/SVC_LOG_DIR."""
    name = 'svc'
    start_secs = '0'
    log_extra = ''

    def setup(self, d, n, log=False):
        super().setup(d, n, log)
        self.bin = svc_bin()
        sock_dir = os.path.join(d, 'run')
        os.makedirs(sock_dir, mode=0o700)
        os.chmod(sock_dir, 0o700)
        self.conf = os.path.join(d, 'svc.kdl')
        self.logdir = os.path.join(d, 'logs')
        self.env = dict(os.environ, SVC_CONFIG=self.conf, SVC_SOCKET=os.path.join(sock_dir, 'svc.sock'),
                        SVC_STATE_DIR=os.path.join(d, 'state'), SVC_LOG_DIR=self.logdir,
                        RUST_LOG=os.environ.get('RUST_LOG', 'info'))
        # reset-after 1s: each SIGKILL of the restart test (>= 1.2 s apart) counts as the first
        # crash after a good run, i.e. an immediate restart as in supervisord; with the default
        # (60 s) the 2nd..5th kill would wait 1, 2, 4, 8 s in BACKOFF by design.
        L = ['defaults { backoff { reset-after "1s" } }']
        ss = '' if self.start_secs is None else f'; start-secs {self.start_secs}'
        for i in range(n):
            if log and i == 0:
                sh = program_sh(i, log).replace('"', '\\"')
                L.append(f'program "p{i:04d}" {{ command "sh" "-c" "{sh}"{ss}{self.log_extra}; '
                         'stdout-log { max-bytes 0 }; stderr-log { path "none" } }')
            else:
                L.append(f'program "p{i:04d}" {{ command "sleep" "{arg(i)}"{ss} }}')
        with open(self.conf, 'w') as f:
            f.write('\n'.join(L) + '\n')

    def cli(self, *args, timeout=CMD_TIMEOUT):
        return run([self.bin] + list(args), timeout=timeout, env=self.env)

    def start(self):
        self.launch([self.bin, 'daemon'], env=self.env)

    def status_listing(self):
        return self.cli('status').stdout

    def status_resources_listing(self):
        """`svc status --json -r`: every program with its group's CPU seconds and memory."""
        return self.cli('status', '--json', '-r').stdout

    def all_running(self):
        return self.cli('status', '--json').returncode == 0

    def child_pid(self, i):
        st = json.loads(self.cli('status', '--json', f'p{i:04d}').stdout)
        return st[0]['pid']

    def supervisor_pids(self):
        return [self.proc.pid] if self.proc and alive(self.proc.pid) else []

    def stop_all(self):
        return self.cli('stop', 'all')

    def shutdown(self):
        if self.proc and alive(self.proc.pid):
            try:
                self.cli('shutdown', timeout=60)
            except Exception:
                pass
            if not self.wait_gone([self.proc.pid], 30):
                self.term_root()

    def log_files(self):
        base = os.path.join(self.logdir, 'p0000.out.log')
        rot = sorted(glob.glob(base + '.*'), key=lambda p: -int(p.rsplit('.', 1)[1]))
        return [p for p in rot + [base] if os.path.exists(p)]


class SvcStamped(Svc):
    """svc with `log-timestamps #true` on the log writer: what stamping every line costs."""
    name = 'svc-stamped'
    log_extra = '; log-timestamps #true'
    # "2026-11-24T20:35:37.391Z " before each of the writer's lines (the last one is partial)
    stamp_len = 25
    log_target = LOG_BYTES + 25 * -(-LOG_BYTES // (len(YES_LINE) + 1))

    def content_ok(self, paths):
        """The writer's bytes once each stamp is taken off, every stamp RFC 3339 UTC."""
        line = (YES_LINE + '\n').encode()
        off = 0
        for p in paths:
            with open(p, 'rb') as f:
                for raw in f:
                    stamp, body = raw[:self.stamp_len], raw[self.stamp_len:]
                    if len(stamp) != 25 or stamp[10:11] != b'T' or stamp[23:25] != b'Z ':
                        return False
                    k = off % len(line)
                    if body != (line + line)[k:k + len(body)]:
                        return False
                    off += len(body)
        return True


class SvcDefaults(Svc):
    """svc with the default start-secs (1 s): RUNNING is only reported after 1 s up."""
    name = 'svc-defaults'
    start_secs = None
    full = False


class SvcDeps(Svc):
    """svc with N `notify-sleep` programs for the deps test. variant:
    deps        DEPS_LEVELS levels of N/levels programs, `ready "notify"`; each program of level k
                `depends-on "Lk-1"`, the group of every program of level k-1 (one name in the
                file; svc expands it to all of them)
    deps-names  the same dependencies with the N/levels names written out in each depends-on
    deps-one    each program of level k depends on one program of level k-1 (the one in its column)
    notify      the same programs and groups, `ready "notify"`, no depends-on
    plain       the same programs and groups, no depends-on, no ready
    health-exec plain + health { exec "true"; interval "10s" } on every program
    health-tcp  plain + health { tcp PORT; interval "10s" } against one listener of the harness
    start-secs 0 as for `svc` in the main table (RUNNING at spawn, or at READY=1 with notify)."""
    name = 'svc-deps'

    def __init__(self, variant, levels=DEPS_LEVELS, tcp_port=None):
        self.variant, self.levels, self.tcp_port = variant, levels, tcp_port

    def setup(self, d, n, log=False):
        Adapter.setup(self, d, n, log)
        self.bin = svc_bin()
        notifier = notifier_bin()
        sock_dir = os.path.join(d, 'run')
        os.makedirs(sock_dir, mode=0o700)
        os.chmod(sock_dir, 0o700)
        self.conf = os.path.join(d, 'svc.kdl')
        self.logdir = os.path.join(d, 'logs')
        self.env = dict(os.environ, SVC_CONFIG=self.conf, SVC_SOCKET=os.path.join(sock_dir, 'svc.sock'),
                        SVC_STATE_DIR=os.path.join(d, 'state'), SVC_LOG_DIR=self.logdir,
                        RUST_LOG=os.environ.get('RUST_LOG', 'info'))
        v, levels = self.variant, max(1, min(self.levels, n))
        per = -(-n // levels)
        level = [i // per for i in range(n)]
        members = [[i for i in range(n) if level[i] == k] for k in range(levels)]
        L = ['defaults { backoff { reset-after "1s" } }']
        for i in range(n):
            s = [f'command "{notifier}" "{arg(i)}"', 'start-secs 0']
            if v in ('deps', 'deps-names', 'deps-one', 'notify'):
                s.append('ready "notify"')
            k = level[i]
            if k > 0 and v == 'deps':
                s.append(f'depends-on "L{k - 1:02d}"')
            elif k > 0 and v == 'deps-names':
                s.append('depends-on ' + ' '.join(f'"p{j:04d}"' for j in members[k - 1]))
            elif k > 0 and v == 'deps-one':
                prev = members[k - 1]
                s.append(f'depends-on "p{prev[(i - members[k][0]) % len(prev)]:04d}"')
            if v == 'health-exec':
                s.append('health { exec "true"; interval "10s" }')
            elif v == 'health-tcp':
                s.append(f'health {{ tcp {self.tcp_port}; interval "10s" }}')
            L.append(f'program "p{i:04d}" {{ ' + '; '.join(s) + ' }')
        for k, m in enumerate(members):
            L.append(f'group "L{k:02d}" {{ programs ' + ' '.join(f'"p{i:04d}"' for i in m) + ' }')
        with open(self.conf, 'w') as f:
            f.write('\n'.join(L) + '\n')


ADAPTERS = {'supervisord': Supervisord, 'runit': Runit, 's6': S6, 'floor': Floor,
            'svc': Svc, 'svc-defaults': SvcDefaults, 'svc-stamped': SvcStamped}


# ----------------------------------------------------------------- measurements
def find_new_child(ppid, a0, old, before=()):
    # Only children that did not exist before the kill are looked at: reading the cmdline of
    # each of a supervisor's 1000 children on every poll made the poll itself take ~10 ms, so
    # a single-process supervisor with many children looked that much slower to restart
    # (runit's and s6's per-program supervisors have one child: their figures do not change).
    for c in reversed(children(ppid)):
        if c != old and c not in before and sleep_arg(c) == a0:
            return c
    return None


class _Done(Exception):
    """Early exit from measure() that still runs its cleanup."""


def measure(peer, n, log=False, emit=lambda r: None):
    a = ADAPTERS[peer]()
    res = {'peer': peer, 'n': 1 if log else n, 'log': log}
    kill_our_sleeps()
    d = tempfile.mkdtemp(prefix=f'svcbench-{peer}-{n}-', dir='/tmp')
    TEMPDIRS.append(d)
    try:
        a.setup(d, 1 if log else n, log)
        if log:
            measure_log(a, res)
            if peer == 'svc':
                # second pass: `svc status` latency while the flood runs (the probe costs CPU
                # on a 2-core box, so throughput is taken from the first pass)
                res.update(cleanup(a, d))
                kill_our_sleeps()
                d2 = tempfile.mkdtemp(prefix='svcbench-svc-flood-', dir='/tmp')
                TEMPDIRS.append(d2)
                a2 = ADAPTERS[peer]()
                r2 = {}
                try:
                    a2.setup(d2, 1, True)
                    measure_log(a2, r2, probe=True)
                finally:
                    r2.update(cleanup(a2, d2))
                r2.pop('cleanup_done', None)
                res.update({k if k.startswith('flood_') else 'probed_' + k: v for k, v in r2.items()})
            raise _Done()
        wanted = [arg(i) for i in range(n)]
        # 1. start
        t0 = perf()
        a.start()
        kick = {}
        kicker = None
        if isinstance(a, Svc):
            kicker = threading.Thread(target=lambda: kick.update(a.after_launch()), daemon=True)
            kicker.start()
        while True:
            s = scan_sleeps()
            if all(w in s for w in wanted):
                break
            reap()
            if perf() - t0 > START_TIMEOUT:
                raise TimeoutError(f'start: only {sum(w in s for w in wanted)}/{n} up')
        res['start_s'] = perf() - t0
        if kicker:
            kicker.join(30)
            res.update(kick)
        while not a.all_running():
            if perf() - t0 > START_TIMEOUT:
                raise TimeoutError('status tool never reported all running')
            time.sleep(0.05)
        res['start_confirmed_s'] = perf() - t0
        emit(res)
        if peer != 'floor' and a.full:
            # 2. memory (supervisor processes only; children excluded)
            pids = a.supervisor_pids()
            res['sup_procs'] = len(pids)
            res['pss_kb'], res['rss_kb'] = mem_kb(pids)
            emit(res)
            # 3. idle: CPU and context switches over IDLE_S, with the count at 20 s as well
            time.sleep(1.0)
            pids = a.supervisor_pids()
            c0, (v0, nv0), w0 = cpu_s(pids), ctxsw(pids), perf()
            time.sleep(min(ANCHOR_IDLE_S, IDLE_S))
            c20, (v20, nv20) = cpu_s(pids), ctxsw(pids)
            time.sleep(max(0.0, IDLE_S - min(ANCHOR_IDLE_S, IDLE_S)))
            c1, (v1, nv1), w1 = cpu_s(pids), ctxsw(pids), perf()
            res['idle_cpu_s'] = round(c1 - c0, 3)
            res['idle_ctxsw'] = (v1 - v0) + (nv1 - nv0)
            res['idle_vol_ctxsw'] = v1 - v0
            res['idle_invol_ctxsw'] = nv1 - nv0
            res['idle_window_s'] = round(w1 - w0, 2)
            res['idle20_cpu_s'] = round(c20 - c0, 3)
            res['idle20_ctxsw'] = (v20 - v0) + (nv20 - nv0)
            emit(res)
            # 4. status: one full listing, median of 5
            ts = []
            for _ in range(5):
                t = perf()
                a.status_listing()
                ts.append(perf() - t)
            res['status_s'] = statistics.median(ts)
            # 4b. the same listing with each program's CPU time and memory, where the tool has it
            if hasattr(a, 'status_resources_listing'):
                ts = []
                for _ in range(5):
                    t = perf()
                    a.status_resources_listing()
                    ts.append(perf() - t)
                res['status_res_s'] = statistics.median(ts)
            emit(res)
            # 5. restart of program 0 after SIGKILL, median of 5, kills >= 1.2 s apart
            ts = []
            for _ in range(5):
                time.sleep(1.2)
                old = a.child_pid(0)
                ppid = stat(old)[2]
                before = set(children(ppid))
                t = perf()
                os.kill(old, signal.SIGKILL)
                k = 0
                while True:
                    if find_new_child(ppid, arg(0), old, before):
                        break
                    k += 1
                    if k % 200 == 0:
                        p = scan_sleeps().get(arg(0))
                        if p and p != old:
                            break
                    if perf() - t > 30:
                        raise TimeoutError('restart: no new sleep in 30 s')
                ts.append(perf() - t)
            res['restart_s'] = statistics.median(ts)
            res['restart_all_s'] = [round(x, 5) for x in ts]
            emit(res)
        # 6. stop all
        before = [p for w, p in scan_sleeps().items() if w in set(wanted)]
        t = perf()
        cp = a.stop_all()
        res['stop_cmd_s'] = perf() - t
        if cp is not None and cp.returncode != 0:
            res['stop_cmd_rc'] = cp.returncode
        while any(sleep_arg(p) for p in before):
            reap()
            if perf() - t > CMD_TIMEOUT:
                raise TimeoutError('stop_all: sleeps still present')
        res['stop_all_s'] = perf() - t
        emit(res)
    except _Done:
        pass
    except KeyboardInterrupt:
        res['error'] = 'interrupted'
        res.update(cleanup(a, d))
        raise
    except Exception as e:
        res['error'] = f'{type(e).__name__}: {e}'
    if 'cleanup_done' not in res:
        res.update(cleanup(a, d))
    res.pop('cleanup_done', None)
    return res


def measure_log(a, res, probe=False):
    lat, stop = [], threading.Event()

    def prober():
        time.sleep(0.05)
        while not stop.is_set():
            t = perf()
            cp = a.cli('status', timeout=30)
            lat.append((t, perf() - t, cp.returncode))
            time.sleep(0.02)

    t0 = perf()
    a.start()
    th = None
    if probe:
        th = threading.Thread(target=prober, daemon=True)
        th.start()
    elif isinstance(a, Svc):
        a.after_launch()
    last, tlast, tfirst = -1, t0, None
    while True:
        reap()
        sz = sum(os.path.getsize(p) for p in a.log_files() if os.path.exists(p))
        now = perf()
        if sz > 0 and tfirst is None:
            tfirst = now
        if sz != last:
            last, tlast = sz, now
        if sz >= getattr(a, 'log_target', LOG_BYTES):
            break
        if sz > 0 and now - tlast > 3.0:     # stalled: report the time of the last growth
            res['log_stalled'] = True
            break
        if now - t0 > LOG_TIMEOUT:
            res['error'] = 'TimeoutError: log not complete'
            break
        time.sleep(0.005)
    stop.set()
    if th:
        th.join(30)
    res['log_s'] = tlast - t0
    time.sleep(0.5)
    files = a.log_files()
    final = sum(os.path.getsize(p) for p in files)
    res['log_bytes'] = final
    res['log_files'] = len(files)
    target = getattr(a, 'log_target', LOG_BYTES)
    res['log_missing'] = target - final
    res['log_exact'] = final == target
    res['log_content_ok'] = a.content_ok(files) if hasattr(a, 'content_ok') else content_ok(files)
    res['log_mb_s'] = round(final / 1e6 / res['log_s'], 1) if res['log_s'] > 0 else None
    if probe:
        # only calls made while bytes were flowing (the first calls also start the daemon's
        # programs and meet a daemon that is still starting)
        during = [(d, rc) for t, d, rc in lat if tfirst is not None and tfirst <= t <= tlast]
        ms = [x * 1000 for x, rc in during]
        res['flood_status_n'] = len(ms)
        res['flood_status_ms_median'] = round(statistics.median(ms), 2) if ms else None
        res['flood_status_ms_max'] = round(max(ms), 2) if ms else None
        res['flood_status_over_50ms'] = sum(1 for x in ms if x >= 50)
        res['flood_status_rcs'] = sorted({rc for _, rc in during})
        res['flood_status_ms_all'] = [round(d * 1000, 1) for _, d, _ in lat]
    return res


def probe_status(a, seconds, at_least=3, limit=180.0):
    """`svc status` back to back (20 ms pause) for `seconds`, and at least `at_least` calls
    (a daemon that takes seconds per call still gets a median); [(ms, rc)]."""
    out, t0 = [], perf()
    while (perf() - t0 < seconds or len(out) < at_least) and perf() - t0 < limit:
        t = perf()
        cp = a.cli('status', timeout=limit)
        out.append(((perf() - t) * 1000, cp.returncode))
        time.sleep(0.02)
    return out


def hostile_client(sock_path, stop, stats):
    """Sends `status` naming one unknown 65,000-character target, reads the reply, repeats."""
    line = (json.dumps({'protocol': 1, 'type': 'status', 'targets': ['q' * HOSTILE_TARGET_LEN]}) + '\n').encode()
    import socket
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    stats['socks'].append(s)
    f = s.makefile('rb')
    try:
        while not stop.is_set():
            t = perf()
            s.sendall(line)
            reply = f.readline()
            if not reply:
                break
            ms = (perf() - t) * 1000
            code = json.loads(reply).get('code')
            with stats['lock']:
                stats['ms'].append(ms)
                stats['codes'][code] = stats['codes'].get(code, 0) + 1
    except (OSError, ValueError):
        pass


def measure_hostile(n, clients=HOSTILE_CLIENTS, emit=lambda r: None):
    """svc at N programs: `svc status` latency for BENCH_HOSTILE_S seconds without, then with,
    `clients` hostile clients (see hostile_client) asking as fast as they are answered."""
    a = Svc()
    res = {'peer': 'svc', 'n': n, 'log': False, 'hostile': True, 'hostile_clients': clients}
    kill_our_sleeps()
    d = tempfile.mkdtemp(prefix=f'svcbench-hostile-{n}-', dir='/tmp')
    TEMPDIRS.append(d)
    stop = threading.Event()
    stats = {'lock': threading.Lock(), 'ms': [], 'codes': {}, 'socks': []}
    threads = []
    try:
        a.setup(d, n)
        t0 = perf()
        a.start()
        a.after_launch()
        while not a.all_running():
            if perf() - t0 > START_TIMEOUT:
                raise TimeoutError('status tool never reported all running')
            time.sleep(0.05)
        time.sleep(1.0)

        def summarise(prefix, calls):
            ms = [x for x, _ in calls]
            res[f'{prefix}_n'] = len(ms)
            res[f'{prefix}_ms_median'] = round(statistics.median(ms), 2) if ms else None
            res[f'{prefix}_ms_max'] = round(max(ms), 2) if ms else None
            res[f'{prefix}_rcs'] = sorted({rc for _, rc in calls})
        summarise('quiet_status', probe_status(a, HOSTILE_S))
        emit(res)
        sock = a.env['SVC_SOCKET']
        threads = [threading.Thread(target=hostile_client, args=(sock, stop, stats), daemon=True)
                   for _ in range(clients)]
        for th in threads:
            th.start()
        time.sleep(0.2)                           # every client has a request in flight
        h0 = perf()
        summarise('hostile_status', probe_status(a, HOSTILE_S))
        res['hostile_window_s'] = round(perf() - h0, 2)
        with stats['lock']:
            ms = list(stats['ms'])
            res['hostile_requests'] = len(ms)
            res['hostile_req_ms_median'] = round(statistics.median(ms), 2) if ms else None
            res['hostile_req_ms_max'] = round(max(ms), 2) if ms else None
            res['hostile_reply_codes'] = dict(stats['codes'])
        emit(res)
    except KeyboardInterrupt:
        res['error'] = 'interrupted'
        raise
    except Exception as e:
        res['error'] = f'{type(e).__name__}: {e}'
    finally:
        stop.set()
        for s in stats['socks']:
            try:
                s.shutdown(2)
            except OSError:
                pass
        for th in threads:
            th.join(5)
        res.update(cleanup(a, d))
        res.pop('cleanup_done', None)
    return res


def proc_times(pid):
    """(utime+stime, cutime+cstime) of pid in seconds: every thread of it, and the children
    it has reaped (the exec health checks); None if it is gone."""
    s = read(f'/proc/{pid}/stat')
    if not s:
        return None
    f = s.decode(errors='replace')
    f = f[f.rindex(')') + 2:].split()
    return (int(f[11]) + int(f[12])) / CLK, (int(f[13]) + int(f[14])) / CLK


def machine_busy_s():
    """CPU seconds spent not idle by the whole machine (all cores), from /proc/stat."""
    f = [int(x) for x in open('/proc/stat').readline().split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / CLK


def tcp_listener(stop):
    """One listener on 127.0.0.1 that accepts and closes, for `health { tcp PORT }`."""
    import socket
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(('127.0.0.1', 0))
    srv.listen(4096)
    srv.settimeout(0.2)
    stats = {'accepted': 0}

    def loop():
        try:
            while not stop.is_set():
                try:
                    c, _ = srv.accept()
                except socket.timeout:
                    continue
                except OSError:
                    return
                c.close()
                stats['accepted'] += 1
        finally:
            srv.close()
    th = threading.Thread(target=loop, daemon=True)
    th.start()
    return srv.getsockname()[1], th, stats


def status_json(a):
    """(exit code, parsed `svc status --json` or None); the JSON is only parsed when the exit
    code says that all are RUNNING (parsing 1,000 entries on every poll costs CPU)."""
    cp = a.cli('status', '--json', timeout=60)
    if cp.returncode != 0:
        return cp.returncode, None
    try:
        return 0, json.loads(cp.stdout)
    except ValueError:
        return cp.returncode, None


def measure_deps(variant, n, levels=DEPS_LEVELS, emit=lambda r: None):
    """svc at N notify-sleep programs (see SvcDeps for the variants): time from launch until
    `svc status --json` shows all N RUNNING and ready; then, without health checks, the idle
    window of measure(); with them, the daemon's CPU over BENCH_HEALTH_S."""
    res = {'peer': 'svc', 'n': n, 'log': False, 'deps': variant}
    if variant.startswith('deps'):
        res['levels'] = levels
    kill_our_sleeps()
    d = tempfile.mkdtemp(prefix=f'svcbench-deps-{variant}-', dir='/tmp')
    TEMPDIRS.append(d)
    stop = threading.Event()
    a, lth = None, None
    try:
        port = lstats = None
        if variant == 'health-tcp':
            port, lth, lstats = tcp_listener(stop)
        a = SvcDeps(variant, levels, port)
        a.setup(d, n)
        res['config_bytes'] = os.path.getsize(a.conf)
        wanted = {arg(i) for i in range(n)}
        # 1. start: until all N are RUNNING and ready (a status poll every 20 ms; /proc is
        #    scanned between polls until all N processes are there)
        t0 = perf()
        a.start()
        seen, polls, last = None, 0, None
        while True:
            reap()
            if seen is None and wanted <= scan_sleeps().keys():
                seen = perf() - t0
            rc, st = status_json(a)
            polls += 1
            if st is not None:
                last = st
                if len(st) == n and all(p.get('state') == 'RUNNING' and p.get('ready') for p in st):
                    break
            if perf() - t0 > START_TIMEOUT:
                ready = sum(1 for p in (last or []) if p.get('ready'))
                raise TimeoutError(f'start: not all RUNNING and ready in {START_TIMEOUT:g} s '
                                   f'(last full listing: {ready} ready)')
            time.sleep(0.02)
        res['start_ready_s'] = perf() - t0
        res['start_s'] = seen if seen is not None else res['start_ready_s']
        res['status_polls'] = polls
        emit(res)
        pid = a.proc.pid
        if not variant.startswith('health'):
            # 2. idle, as in measure(): from 1 s after everything is ready, no status calls
            time.sleep(1.0)
            c0, (v0, nv0), w0 = cpu_s([pid]), ctxsw([pid]), perf()
            time.sleep(min(ANCHOR_IDLE_S, IDLE_S))
            c20, (v20, nv20) = cpu_s([pid]), ctxsw([pid])
            time.sleep(max(0.0, IDLE_S - min(ANCHOR_IDLE_S, IDLE_S)))
            c1, (v1, nv1), w1 = cpu_s([pid]), ctxsw([pid]), perf()
            res['idle_cpu_s'] = round(c1 - c0, 3)
            res['idle_ctxsw'] = (v1 - v0) + (nv1 - nv0)
            res['idle_vol_ctxsw'] = v1 - v0
            res['idle_invol_ctxsw'] = nv1 - nv0
            res['idle_window_s'] = round(w1 - w0, 2)
            res['idle20_ctxsw'] = (v20 - v0) + (nv20 - nv0)
            res['idle20_cpu_s'] = round(c20 - c0, 3)
        else:
            # 3. health checks: the daemon's own CPU (all threads) over HEALTH_S, from 2 s after
            #    all are RUNNING (the first checks, made at spawn, are over); no status calls
            time.sleep(2.0)
            # svc runs exec checks from a helper process of its own (`svc __probe-runner`, a
            # child of the daemon): its CPU and its checks' count too.
            runners = [c for c in children(pid) if b'__probe-runner' in (read(f'/proc/{c}/cmdline') or b'')]
            r0 = [proc_times(r) or (0, 0) for r in runners]
            (c0, ch0), (v0, nv0), m0, a0, w0 = proc_times(pid), ctxsw([pid]), machine_busy_s(), \
                (lstats or {}).get('accepted', 0), perf()
            time.sleep(HEALTH_S)
            (c1, ch1), (v1, nv1), m1, a1, w1 = proc_times(pid), ctxsw([pid]), machine_busy_s(), \
                (lstats or {}).get('accepted', 0), perf()
            r1 = [proc_times(r) or (0, 0) for r in runners]
            win = w1 - w0
            res['health_window_s'] = round(win, 2)
            res['health_runners'] = len(runners)
            res['health_runner_cpu_pct'] = round(100 * sum(b[0] - a[0] for a, b in zip(r0, r1)) / win, 3)
            res['health_runner_children_cpu_pct'] = round(100 * sum(b[1] - a[1] for a, b in zip(r0, r1)) / win, 3)
            res['health_total_cpu_pct'] = round(res.get('health_runner_cpu_pct', 0) + 100 * (c1 - c0) / win, 3)
            res['health_cpu_s'] = round(c1 - c0, 3)
            res['health_cpu_pct'] = round(100 * (c1 - c0) / win, 3)
            res['health_children_cpu_pct'] = round(100 * (ch1 - ch0) / win, 3)
            res['health_ctxsw'] = (v1 - v0) + (nv1 - nv0)
            res['health_machine_pct'] = round(100 * (m1 - m0) / win, 1)
            if lstats is not None:
                res['tcp_accepted'] = a1 - a0
            rc, st = status_json(a)
            full = json.loads(a.cli('status', '--json', timeout=60).stdout) if st is None else st
            res['healthy_at_end'] = sum(1 for p in full if p.get('health') == 'healthy')
        emit(res)
    except KeyboardInterrupt:
        res['error'] = 'interrupted'
        raise
    except Exception as e:
        res['error'] = f'{type(e).__name__}: {e}'
    finally:
        stop.set()
        if lth:
            lth.join(5)
        if a is not None and a.proc is not None:
            res.update(cleanup(a, d))
        else:
            shutil.rmtree(d, ignore_errors=True)
            if d in TEMPDIRS:
                TEMPDIRS.remove(d)
        res.pop('cleanup_done', None)
    return res


def cleanup(a, d, keep_dir=False):
    out = {'cleanup_done': True}
    snap = []
    try:
        if a.proc and alive(a.proc.pid):
            snap = [(p, stat(p)[4]) for p in [a.proc.pid] + descendants(a.proc.pid) if stat(p)]
        a.shutdown()
    except Exception as e:
        out['cleanup_error'] = f'{type(e).__name__}: {e}'
    time.sleep(0.2)
    reap()
    left = [p for p, st in snap if (s := stat(p)) and s[4] == st and s[1] != 'Z']
    if left:
        out['cleanup_killed'] = len(left)
        for p in left:
            kill_group_of(p)
    ks = kill_our_sleeps()
    if ks:
        out['stray_sleeps_killed'] = ks
    if a.proc:
        try:
            os.killpg(a.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if a.proc in LAUNCHED and a.proc.poll() is not None:
            LAUNCHED.remove(a.proc)
    reap()
    try:
        a._out.close()
    except Exception:
        pass
    if not keep_dir:
        shutil.rmtree(d, ignore_errors=True)
        if d in TEMPDIRS:
            TEMPDIRS.remove(d)
    return out


# ----------------------------------------------------------------- setup / versions
def pin_svc(src):
    """Build svc (cargo build --release) from the work tree or from a clean export of HEAD,
    and copy the binary to PIN_DIR, so concurrent rebuilds of target/ do not change it mid-run."""
    if src == 'head':
        os.makedirs(HEAD_SRC, exist_ok=True)
        for name in os.listdir(HEAD_SRC):          # keep target/ so a rebuild is incremental
            if name != 'target':
                p = os.path.join(HEAD_SRC, name)
                shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.remove(p)
        subprocess.run(f'git -C {REPO} archive HEAD | tar -x -C {HEAD_SRC}', shell=True, check=True)
        build_dir = HEAD_SRC
    else:
        build_dir = REPO
    print(f'+ cargo build --release  (in {build_dir})', flush=True)
    subprocess.run(['cargo', 'build', '--release'], cwd=build_dir, check=True)
    os.makedirs(PIN_DIR, exist_ok=True)
    # svc-daemon beside svc: `svc daemon` hands over to it (only the daemon's code resident).
    for b in ('svc', 'svc-daemon'):
        shutil.copy2(os.path.join(build_dir, 'target', 'release', b), os.path.join(PIN_DIR, b))
    git = run(['git', '-C', REPO, 'rev-parse', '--short', 'HEAD'], timeout=20).stdout.strip()
    dirty = run(['git', '-C', REPO, 'status', '--porcelain', '--', 'src', 'platform', 'Cargo.toml',
                 'Cargo.lock'], timeout=20).stdout.strip()
    info = {'git': git, 'source': src, 'dirty': bool(dirty) if src == 'worktree' else False,
            'built': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}
    with open(os.path.join(PIN_DIR, 'build.json'), 'w') as f:
        json.dump(info, f)
    print(f'pinned {PIN_DIR}/svc: {info}', flush=True)


def notifier_bin():
    """The deps test's program, compiled from NOTIFY_C with the machine's cc (static if the
    static libc is there) into PIN_DIR; rebuilt only when the source changes."""
    path = os.path.join(PIN_DIR, NOTIFIER)
    src = path + '.c'
    if os.access(path, os.X_OK) and os.path.exists(src) and open(src).read() == NOTIFY_C:
        return path
    os.makedirs(PIN_DIR, exist_ok=True)
    with open(src, 'w') as f:
        f.write(NOTIFY_C)
    cc = shutil.which('cc') or shutil.which('gcc')
    if not cc:
        raise RuntimeError('the deps test needs a C compiler (apt-get install -y gcc) for notify-sleep')
    for flags in (['-O2', '-static'], ['-O2']):
        cp = run([cc] + flags + ['-o', path + '.tmp', src], timeout=120)
        if cp.returncode == 0:
            os.replace(path + '.tmp', path)
            print(f'+ {cc} {" ".join(flags)} -o {path} {src}', flush=True)
            return path
    raise RuntimeError(f'cannot compile {src}: {cp.stdout}')


def setup(install=True, src='worktree'):
    if install:
        for cmd in (['apt-get', 'install', '-y', 'runit', 's6'],
                    [sys.executable, '-m', 'pip', 'install', 'supervisor']):
            print('+ ' + ' '.join(cmd), flush=True)
            cp = subprocess.run(cmd)
            if cp.returncode != 0 and cmd[0] == 'apt-get':
                subprocess.run(['apt-get', 'update'])
                subprocess.run(cmd, check=True)
    if not os.environ.get('BENCH_SVC'):
        pin_svc(src)
    notifier_bin()
    for k, v in versions().items():
        print(f'{k}: {v}')


def versions():
    v = {}
    try:
        b = svc_bin()
        v['svc'] = run([b, '--version'], timeout=20).stdout.strip()
        with open(b, 'rb') as f:
            v['svc'] += ' (sha256 ' + hashlib.sha256(f.read()).hexdigest()[:12] + ')'
        bj = os.path.join(os.path.dirname(b), 'build.json')
        if os.path.exists(bj):
            info = json.load(open(bj))
            v['svc'] += f' git {info["git"]}{"+dirty work tree" if info.get("dirty") else ""} ' \
                        f'({info["source"]}, built {info["built"]})'
    except Exception as e:
        v['svc'] = repr(e)
    try:
        v['supervisord'] = run([tool('supervisord'), '--version'], timeout=20).stdout.strip()
    except Exception as e:
        v['supervisord'] = repr(e)
    for key, pkg in (('runit', 'runit'), ('s6', 's6'), ('skalibs', 'libskarnet2.13'),
                     ('execline', 'execline')):
        try:
            p = run(['dpkg-query', '-W', '-f', '${Version}', pkg], timeout=20)
            v[key] = p.stdout.strip() if p.returncode == 0 and p.stdout.strip() else '?'
        except Exception:
            v[key] = '?'
    v['python'] = sys.version.split()[0]
    v['kernel'] = os.uname().release
    return v


# ----------------------------------------------------------------- report
ROWS = [('start_s', 'start: launch -> all N sleeps in /proc (s)'),
        ('start_confirmed_s', 'start + status tool confirms all running (s)'),
        ('sup_procs', 'supervisor processes counted'),
        ('pss_kb', 'memory: PSS of supervisor procs (KiB)'),
        ('rss_kb', 'memory: RSS of supervisor procs (KiB)'),
        ('idle20_cpu_s', 'idle: CPU s over 20 s (anchors\' window)'),
        ('idle20_ctxsw', 'idle: context switches over 20 s (anchors\' window)'),
        ('idle_cpu_s', f'idle: CPU s over {IDLE_S:g} s'),
        ('idle_vol_ctxsw', f'idle: voluntary context switches over {IDLE_S:g} s'),
        ('idle_invol_ctxsw', f'idle: involuntary context switches over {IDLE_S:g} s'),
        ('status_s', 'status: one full listing, median of 5 (s)'),
        ('status_res_s', 'status with CPU and memory per program (`svc status --json -r`), median of 5 (s)'),
        ('restart_s', 'restart: SIGKILL -> new sleep, median of 5 (s)'),
        ('stop_cmd_s', 'stop_all: command returned (s)'),
        ('stop_all_s', 'stop_all: command returned + all sleeps gone (s)')]
LOG_ROWS = [('log_s', 'log: start -> last byte in log file(s) (s)'),
            ('log_mb_s', 'log: MB/s (1e6 B)'),
            ('log_bytes', 'log: bytes in log file(s)'),
            ('log_exact', 'log: exactly 200,000,000 bytes?'),
            ('log_content_ok', 'log: content = the writer\'s bytes (prefix)?'),
            ('probed_log_mb_s', 'log with `svc status` every 20 ms: MB/s'),
            ('flood_status_n', '`svc status` calls during the flood'),
            ('flood_status_ms_median', '`svc status` during the flood: median ms'),
            ('flood_status_ms_max', '`svc status` during the flood: max ms'),
            ('flood_status_over_50ms', '`svc status` during the flood: calls >= 50 ms')]
HOSTILE_ROWS = [('quiet_status_n', '`svc status` calls, no hostile clients'),
                ('quiet_status_ms_median', '`svc status`, no hostile clients: median ms'),
                ('quiet_status_ms_max', '`svc status`, no hostile clients: max ms'),
                ('hostile_status_n', '`svc status` calls while hostile requests arrive'),
                ('hostile_status_ms_median', '`svc status` while hostile requests arrive: median ms'),
                ('hostile_status_ms_max', '`svc status` while hostile requests arrive: max ms'),
                ('hostile_requests', 'hostile requests answered meanwhile'),
                ('hostile_req_ms_median', 'hostile request: median ms'),
                ('hostile_req_ms_max', 'hostile request: max ms')]


DEPS_ROWS = [('config_bytes', 'config file (bytes)'),
             ('start_s', 'start: launch -> all N programs in /proc (s)'),
             ('start_ready_s', 'start: launch -> `svc status --json` shows all RUNNING and ready (s)'),
             ('status_polls', '`svc status --json` calls until then'),
             ('idle20_ctxsw', f'idle: context switches over {min(ANCHOR_IDLE_S, IDLE_S):g} s'),
             ('idle_cpu_s', f'idle: CPU s over {IDLE_S:g} s'),
             ('idle_vol_ctxsw', f'idle: voluntary context switches over {IDLE_S:g} s'),
             ('idle_invol_ctxsw', f'idle: involuntary context switches over {IDLE_S:g} s')]
HEALTH_ROWS = [('start_ready_s', 'start: launch -> all RUNNING (s)'),
               ('health_cpu_s', 'daemon CPU s (utime+stime, all threads) over the window'),
               ('health_cpu_pct', 'daemon CPU, % of one core'),
               ('health_children_cpu_pct', 'its reaped children (checks run by the daemon itself), % of one core'),
               ('health_runner_cpu_pct', 'its probe runner (`svc __probe-runner`), % of one core'),
               ('health_runner_children_cpu_pct', "the runner's reaped children (the checks), % of one core"),
               ('health_total_cpu_pct', 'daemon + runner, % of one core'),
               ('health_ctxsw', 'daemon context switches over the window'),
               ('health_machine_pct', 'whole machine busy, % of one core (everything on the box)'),
               ('tcp_accepted', 'connections accepted by the listener over the window'),
               ('healthy_at_end', 'programs healthy at the end')]


def fmt(v):
    if v is None:
        return '—'
    if isinstance(v, bool):
        return 'yes' if v else 'no'
    if isinstance(v, int):
        return f'{v:,}'
    if isinstance(v, float):
        if v == 0:
            return '0'
        if abs(v) >= 100:
            return f'{v:,.0f}'
        return f'{v:.3g}' if abs(v) < 1 else f'{v:.3f}'.rstrip('0').rstrip('.')
    return str(v)


def med(vals):
    vals = [v for v in vals if v is not None and not isinstance(v, (list, dict))]
    if not vals:
        return None
    if all(isinstance(v, bool) for v in vals):
        return all(vals)
    m = statistics.median(vals)
    return int(m) if all(isinstance(v, int) for v in vals) and m == int(m) else m


def tables(allr, peers, ns):
    L = []
    for n in ns:
        cols = [p for p in peers if any(r['peer'] == p and r['n'] == n and not r['log']
                                        and not r.get('hostile') and not r.get('deps') for r in allr)]
        if not cols:
            continue
        def vals(p, key):
            return [r.get(key) for r in allr if r['peer'] == p and r['n'] == n and not r['log']
                    and not r.get('hostile') and not r.get('deps')]
        hdr = [f'N={n}'] + [f'{p} ({len(vals(p, "peer"))})' for p in cols]
        L += ['', '| ' + ' | '.join(hdr) + ' |', '|' + '---|' * len(hdr)]
        for key, label in ROWS:
            cells = [fmt(med(vals(p, key))) for p in cols]
            if any(c != '—' for c in cells):
                L.append('| ' + ' | '.join([label] + cells) + ' |')
    lp = [p for p in peers if any(r['peer'] == p and r['log'] for r in allr)]
    if lp:
        def lvals(p, key):
            return [r.get(key) for r in allr if r['peer'] == p and r['log']]
        hdr = ['log, N=1, 200,000,000 B via stdout'] + [f'{p} ({len(lvals(p, "peer"))})' for p in lp]
        L += ['', '| ' + ' | '.join(hdr) + ' |', '|' + '---|' * len(hdr)]
        for key, label in LOG_ROWS:
            cells = [fmt(med(lvals(p, key))) for p in lp]
            if any(c != '—' for c in cells):
                L.append('| ' + ' | '.join([label] + cells) + ' |')
    hr = [r for r in allr if r.get('hostile')]
    for n in sorted({r['n'] for r in hr}):
        rs = [r for r in hr if r['n'] == n]
        k = rs[0].get('hostile_clients', HOSTILE_CLIENTS)
        hdr = [f'hostile requests, N={n}: {k} clients, `status` of one {HOSTILE_TARGET_LEN:,}-char '
               f'unknown target, back to back', f'svc ({len(rs)})']
        L += ['', '| ' + ' | '.join(hdr) + ' |', '|' + '---|' * len(hdr)]
        for key, label in HOSTILE_ROWS:
            cell = fmt(med([r.get(key) for r in rs]))
            if cell != '—':
                L.append(f'| {label} | {cell} |')
    return L + deps_tables(allr)


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def deps_tables(allr):
    """The deps test: start and idle per variant, the health-check CPU, the issue's targets."""
    dr = [r for r in allr if r.get('deps')]
    L = []
    for n in sorted({r['n'] for r in dr}):
        rs = [r for r in dr if r['n'] == n]
        order = [v for v in DEPS_VARIANTS + DEPS_EXTRA if any(r['deps'] == v for r in rs)]

        def vals(v, key):
            return [r.get(key) for r in rs if r['deps'] == v]

        def m(v, key):
            return med(vals(v, key))
        lv = next((r['levels'] for r in rs if r.get('levels')), DEPS_LEVELS)
        start = [v for v in order if not v.startswith('health')]
        if start:
            hdr = [f'start of N={n} notify-sleep programs ({lv} levels of {-(-n // lv)} for deps*)'] + \
                [f'{v} ({len(vals(v, "deps"))})' for v in start]
            L += ['', '| ' + ' | '.join(hdr) + ' |', '|' + '---|' * len(hdr)]
            for key, label in DEPS_ROWS:
                cells = [fmt(m(v, key)) for v in start]
                if any(c != '—' for c in cells):
                    L.append('| ' + ' | '.join([label] + cells) + ' |')
            for base in ('notify', 'plain'):
                if base in start:
                    cells = [fmt(ratio(m(v, 'start_ready_s'), m(base, 'start_ready_s'))) for v in start]
                    L.append('| ' + ' | '.join([f'start to all ready: ratio to {base} (medians)'] + cells) + ' |')
        health = [v for v in order if v.startswith('health')]
        if health:
            hdr = [f'N={n} programs, each with a 10 s health check; window {HEALTH_S:g} s'] + \
                [f'{v} ({len(vals(v, "deps"))})' for v in health]
            L += ['', '| ' + ' | '.join(hdr) + ' |', '|' + '---|' * len(hdr)]
            for key, label in HEALTH_ROWS:
                cells = [fmt(m(v, key)) for v in health]
                if any(c != '—' for c in cells):
                    L.append('| ' + ' | '.join([label] + cells) + ' |')
        tg = []
        if 'deps' in order and 'notify' in order:
            r = ratio(m('deps', 'start_ready_s'), m('notify', 'start_ready_s'))
            per = [ratio(a.get('start_ready_s'), b.get('start_ready_s'))
                   for a in rs if a['deps'] == 'deps' for b in rs
                   if b['deps'] == 'notify' and b.get('round') == a.get('round')]
            tg.append((f'start with {lv} dependency levels within 1.3x of the same without (both '
                       '`ready "notify"`)', f'{fmt(r)}x (per round: {", ".join(fmt(x) for x in per) or "—"})',
                       r is not None and r <= 1.3))
        if 'deps' in order:
            x = vals('deps', 'idle_ctxsw')
            tg.append((f'idle wake-ups with dependencies and `ready "notify"`, no probes: 0 over {IDLE_S:g} s',
                       ', '.join(fmt(v) for v in x), bool(x) and all(v == 0 for v in x)))
        for v in health:
            x = m(v, 'health_cpu_pct')
            tg.append((f'{v}: daemon CPU with {n:,} checks every 10 s under 1 % of one core',
                       f'{fmt(x)} %', x is not None and x < 1.0))
            x = m(v, 'health_total_cpu_pct')
            if x is not None and any(r.get('health_runners') for r in rs if r['deps'] == v):
                tg.append((f'{v}: daemon + its probe runner under 1 % of one core', f'{fmt(x)} %', x < 1.0))
        if tg:
            L += ['', f'| target (N={n}) | measured (medians) | met? |', '|---|---|---|']
            L += [f'| {a} | {b} | {"yes" if c else "**no**"} |' for a, b, c in tg]
    return L


def write_md(results, meta, peers, ns, current=None, done=False):
    allr = results + ([current] if current else [])
    L = ['# svc benchmark results (bench/harness.py)', '',
         f'- date: {meta["date"]} (status: {"complete" if done else "IN PROGRESS"}, '
         f'elapsed {meta.get("elapsed", 0):.0f} s)',
         f'- host: nproc={os.cpu_count()}, kernel {meta["v"]["kernel"]}, Debian {meta["debian"]}, '
         f'/tmp on {meta["tmpfs"]}, RLIMIT_NOFILE={meta["nofile"]}, load average at start {meta["load"]}',
         '- versions: ' + ', '.join(f'{k} {v}' for k, v in meta['v'].items()),
         f'- command: `python3 bench/harness.py {" ".join(meta["argv"])}`; cells are medians over '
         'rounds, `(k)` = runs that produced the column.', '']
    L += ['## Tables'] + tables(allr, peers, ns)
    errs = [r for r in allr if any(k in r for k in ('error', 'cleanup_error', 'stop_cmd_rc', 'log_stalled'))]
    L += ['', '## Errors / anomalies', '']
    L += [f'- round {r.get("round")} {r["peer"]} N={r["n"]}{" log" if r["log"] else ""}'
          f'{" deps " + r["deps"] if r.get("deps") else ""}: '
          + ', '.join(f'{k}={r[k]}' for k in ('error', 'cleanup_error', 'stop_cmd_rc', 'log_stalled',
                                              'log_missing') if k in r) for r in errs] or ['- none']
    L += ['', '## Raw results (one JSON per run; also in results.jsonl)', '', '```']
    L += [json.dumps(r, sort_keys=True) for r in allr]
    L += ['```', '']
    path = meta.get('md', RESULTS_MD)
    with open(path + '.tmp', 'w') as f:
        f.write('\n'.join(L))
    os.replace(path + '.tmp', path)


def run_all(peers, ns, rounds, budget, argv, md, jobs=None, hostile_clients=HOSTILE_CLIENTS):
    t_begin = time.time()
    try:
        load = open('/proc/loadavg').read().split()[:3]
    except OSError:
        load = '?'
    meta = {'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
            'v': versions(), 'debian': open('/etc/debian_version').read().strip(),
            'nofile': resource.getrlimit(resource.RLIMIT_NOFILE), 'argv': argv, 'load': ' '.join(load),
            'md': md}
    try:
        meta['tmpfs'] = run(['df', '-T', '/tmp']).stdout.splitlines()[-1].split()[1]
    except Exception:
        meta['tmpfs'] = '?'
    for k, v in meta['v'].items():
        print(f'# {k}: {v}', flush=True)
    jsonl = os.path.splitext(md)[0].replace('RESULTS', 'results') + '.jsonl'
    if os.path.exists(jsonl):
        os.replace(jsonl, jsonl + '.prev')
    results = []
    rnd = 0

    def emit(cur):
        meta['elapsed'] = time.time() - t_begin
        write_md(results, meta, peers, ns, current=dict(cur, round=rnd))

    if jobs is None:
        jobs = [(p, n, False) for n in ns for p in peers] + \
            [(p, 1, True) for p in peers if p in LOG_PEERS] + \
            [('svc', max(ns), 'hostile') for p in peers if p == 'svc'] + \
            [(v, max(ns), 'deps') for v in DEPS_VARIANTS if 'svc' in peers]
    for rnd in range(1, rounds + 1):
        for p, n, log in jobs:
            if time.time() - t_begin > budget:
                print(f'# budget exhausted in round {rnd}', flush=True)
                break
            if log == 'hostile':
                r = measure_hostile(n, hostile_clients, emit)
            elif log == 'deps':
                r = measure_deps(p, n, DEPS_LEVELS, emit)
            else:
                r = measure(p, n, log, emit)
            r['round'] = rnd
            results.append(r)
            with open(jsonl, 'a') as f:
                f.write(json.dumps(r, sort_keys=True) + '\n')
            meta['elapsed'] = time.time() - t_begin
            write_md(results, meta, peers, ns)
            print(json.dumps(r, sort_keys=True), flush=True)
        else:
            continue
        break
    meta['elapsed'] = time.time() - t_begin
    write_md(results, meta, peers, ns, done=True)
    print('\n'.join(tables(results, peers, ns)))


RESULTS_REMOTE_MD = os.path.join(HERE, 'RESULTS-remote.md')
REMOTE_CONFIG = 'program "web" { command "sleep" "99999"; start-secs 0 }\n'  # not 7dddd: a concurrent harness kills those


def measure_remote(rounds):
    """`svc -H HOST status` through a private sshd on 127.0.0.1 (started as the current user with
    throwaway keys, as tests/remote.rs does): cold (no ssh master: handshake and login included),
    warm (through the master the first call left), without connection sharing
    (-o ControlMaster=no), against `ssh HOST true` (a new connection each time) and a local
    `svc status`. Medians of ROUNDS calls each, in milliseconds."""
    bin_ = svc_bin()
    d = tempfile.mkdtemp(prefix='svcbench-remote-')
    os.chmod(d, 0o700)
    sshd = daemon = None
    try:
        for k in ('host_key', 'user_key'):
            run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', os.path.join(d, k)], check=True)
        shutil.copy(os.path.join(d, 'user_key.pub'), os.path.join(d, 'authorized_keys'))
        if os.getuid() == 0:
            os.makedirs('/run/sshd', exist_ok=True)
        import socket
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        with open(os.path.join(d, 'sshd_config'), 'w') as f:
            f.write(f'Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n'
                    f'AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n'
                    'PasswordAuthentication no\nKbdInteractiveAuthentication no\n'
                    'PermitRootLogin prohibit-password\nLogLevel VERBOSE\n')
        sshd = subprocess.Popen(['/usr/sbin/sshd', '-D', '-f', f'{d}/sshd_config', '-E', f'{d}/sshd.log'],
                                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 20
        def sshd_log():
            return (read(f'{d}/sshd.log') or b'').decode(errors='replace')

        while 'Server listening' not in sshd_log():
            if time.time() > deadline or sshd.poll() is not None:
                raise RuntimeError(f'sshd did not start: {sshd_log()}')
            time.sleep(0.02)
        with open(os.path.join(d, 'host_key.pub')) as f:
            hostkey = f.read()
        with open(os.path.join(d, 'known_hosts'), 'w') as f:
            f.write(f'[127.0.0.1]:{port} {hostkey}')
        env = dict(os.environ, HOME=d, XDG_RUNTIME_DIR=f'{d}/runtime', SVC_CONFIG=f'{d}/svc.kdl',
                   SVC_SOCKET=f'{d}/run/svc.sock', SVC_STATE_DIR=f'{d}/state', SVC_LOG_DIR=f'{d}/logs')
        env.pop('SVC_HOST', None)
        os.makedirs(f'{d}/runtime', mode=0o700)
        with open(f'{d}/svc.kdl', 'w') as f:
            f.write(REMOTE_CONFIG)
        write_exec(f'{d}/remote-svc', '#!/bin/sh\n' + ''.join(
            f"export {k}='{env[k]}'\n" for k in ('SVC_CONFIG', 'SVC_SOCKET', 'SVC_STATE_DIR', 'SVC_LOG_DIR'))
            + f"exec '{bin_}' \"$@\"\n")
        daemon = subprocess.Popen([bin_, 'daemon'], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=open(f'{d}/daemon.log', 'w'), start_new_session=True)
        deadline = time.time() + 20
        while run([bin_, 'status'], env=env).returncode != 0:
            if time.time() > deadline:
                raise RuntimeError('the daemon did not answer')
            time.sleep(0.02)
        ssh = (f'ssh -F /dev/null -i {d}/user_key -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes '
               f'-o UserKnownHostsFile={d}/known_hosts -o StrictHostKeyChecking=yes')
        host = f'127.0.0.1:{port}'
        remote = [bin_, '-H', host, '--remote-svc', f'{d}/remote-svc', 'status']
        ctl = f'{d}/runtime/svc/ssh'

        def stop_master():
            for name in os.listdir(ctl) if os.path.isdir(ctl) else []:
                run(['ssh', '-F', '/dev/null', '-S', os.path.join(ctl, name), '-O', 'exit', 'x'])

        e = dict(env, SVC_SSH_COMMAND=ssh)
        e_noshare = dict(env, SVC_SSH_COMMAND=ssh + ' -o ControlMaster=no')
        ssh_true = ssh.split() + ['-p', str(port), '127.0.0.1', 'true']
        # name: (argv, env, warm): a warm variant runs with the master up, a cold one without.
        variants = {
            'ssh_true_ms': (ssh_true, env, False),
            'svc_remote_cold_ms': (remote, e, False),
            'svc_remote_no_sharing_ms': (remote, e_noshare, False),
            'svc_remote_warm_ms': (remote, e, True),
            'ssh_true_warm_ms': (ssh_true[:1] + ['-o', f'ControlPath={ctl}/%C'] + ssh_true[1:], env, True),
            'svc_remote_warm_info_ms': (remote[:-1] + ['pid'], e, True),
            'svc_local_ms': ([bin_, 'status'], env, False),
        }
        times = {k: [] for k in variants}
        warm_connections = 0
        # Round after round of every variant, so that the machine's load (shared, noisy) falls
        # on all of them alike rather than on whichever ran during a busy minute.
        for _ in range(rounds):
            for name, (argv, e_, warm) in variants.items():
                if warm:
                    run(remote, env=e)
                else:
                    stop_master()
                before = sshd_log().count('Connection from ')
                t = time.perf_counter()
                r = run(argv, env=e_)
                times[name].append((time.perf_counter() - t) * 1000)
                if warm:
                    warm_connections += sshd_log().count('Connection from ') - before
                if r.returncode != 0:
                    raise RuntimeError(f'{argv} failed: {r.stdout}')
        res = {k: statistics.median(v) for k, v in times.items()}
        res['warm_new_connections'] = warm_connections
        res['svc'] = run([bin_, '--version']).stdout.strip()
        res['rounds'] = rounds
        return res
    finally:
        try:
            stop_master()
        except Exception:
            pass
        for p in (daemon, sshd):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(d, ignore_errors=True)


def write_remote_md(res, md):
    rows = [
        ('`ssh 127.0.0.1 true` (new connection each time)', res['ssh_true_ms']),
        ('`svc -H 127.0.0.1 status`, cold (no ssh master yet)', res['svc_remote_cold_ms']),
        ('`svc -H 127.0.0.1 status`, warm (through the master)', res['svc_remote_warm_ms']),
        ('`ssh 127.0.0.1 true` through the same master', res['ssh_true_warm_ms']),
        ('`svc -H 127.0.0.1 pid` (one `info` request), warm', res['svc_remote_warm_info_ms']),
        ('`svc -H 127.0.0.1 status` with `-o ControlMaster=no` (a new connection each time)',
         res['svc_remote_no_sharing_ms']),
        ('`svc status` on the machine itself', res['svc_local_ms']),
    ]
    with open(md, 'w') as f:
        f.write('# svc -H: the cost of a remote command\n\n'
                f'`python3 bench/harness.py remote` ({res["svc"]}; '
                f'{datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}). '
                f'A private sshd on 127.0.0.1 (no system sshd), ed25519 keys; median of {res["rounds"]} '
                'calls each, wall clock of the whole command.\n\n| what | ms |\n|---|---|\n')
        for name, v in rows:
            f.write(f'| {name} | {v:.1f} |\n')
        f.write(f'\nNew connections sshd accepted during the warm calls: {res["warm_new_connections"]} '
                f'(of {3 * res["rounds"]}).\n\n```json\n'
                f'{json.dumps(res, sort_keys=True)}\n```\n')


def opt(args, name, default):
    return args[args.index(name) + 1] if name in args else default


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:   # PR_SET_CHILD_SUBREAPER: orphaned sleeps re-parent to us, so we can reap them
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
    except Exception:
        pass
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    atexit.register(cleanup_everything)
    args = sys.argv[1:]
    if not args or args[0] in ('-h', '--help', 'help'):
        print(__doc__)
        return 2
    try:
        if args[0] == 'setup':
            setup(install='--no-install' not in args, src=opt(args, '--svc-src', 'worktree'))
            return 0
        if args[0] == 'versions':
            for k, v in versions().items():
                print(f'{k}: {v}')
            return 0
        if args[0] == 'all':
            peers = tuple(opt(args, '--peers', ','.join(PEERS)).split(','))
            bad = [p for p in peers if p not in ADAPTERS]
            if bad:
                print(f'unknown peer(s) {bad}; known: {", ".join(ADAPTERS)}', file=sys.stderr)
                return 2
            ns = tuple(int(x) for x in opt(args, '--ns', '10,100,1000').split(','))
            md = os.path.abspath(opt(args, '--out', RESULTS_MD))
            run_all(peers, ns, int(opt(args, '--rounds', '3')), float(opt(args, '--budget', '7200')),
                    args[1:], md)
            return 0
        if args[0] == 'hostile':
            n, clients = int(opt(args, '--n', '1000')), int(opt(args, '--clients', str(HOSTILE_CLIENTS)))
            md = os.path.abspath(opt(args, '--out', RESULTS_HOSTILE_MD))
            run_all(('svc',), (n,), int(opt(args, '--rounds', '3')), float(opt(args, '--budget', '7200')),
                    args, md, jobs=[('svc', n, 'hostile')], hostile_clients=clients)
            return 0
        if args[0] == 'deps':
            global DEPS_LEVELS
            n, DEPS_LEVELS = int(opt(args, '--n', '1000')), int(opt(args, '--levels', str(DEPS_LEVELS)))
            variants = opt(args, '--variants', ','.join(DEPS_VARIANTS)).split(',')
            bad = [v for v in variants if v not in DEPS_VARIANTS + DEPS_EXTRA]
            if bad:
                print(f'unknown variant(s) {bad}; known: {", ".join(DEPS_VARIANTS + DEPS_EXTRA)}',
                      file=sys.stderr)
                return 2
            md = os.path.abspath(opt(args, '--out', RESULTS_DEPS_MD))
            run_all(('svc',), (n,), int(opt(args, '--rounds', '3')), float(opt(args, '--budget', '7200')),
                    args, md, jobs=[(v, n, 'deps') for v in variants])
            return 0
        if args[0] == 'remote':
            res = measure_remote(int(opt(args, '--rounds', '20')))
            print(json.dumps(res, sort_keys=True))
            md = os.path.abspath(opt(args, '--out', RESULTS_REMOTE_MD))
            write_remote_md(res, md)
            with open(os.path.splitext(md)[0].replace('RESULTS-', 'results-') + '.jsonl', 'a') as f:
                f.write(json.dumps(res, sort_keys=True) + '\n')
            return 0
        if args[0] == 'one' and len(args) >= 2:
            peer, n = args[1], int(args[2]) if len(args) > 2 and args[2].isdigit() else 10
            if peer not in ADAPTERS:
                print(f'unknown peer {peer}; one of {", ".join(ADAPTERS)}', file=sys.stderr)
                return 2
            print(json.dumps(measure(peer, n, '--log' in args), sort_keys=True))
            return 0
        print(__doc__)
        return 2
    except KeyboardInterrupt as e:
        print(f'\ninterrupted ({e}); cleaning up', file=sys.stderr)
        return 130
    finally:
        cleanup_everything()


if __name__ == '__main__':
    sys.exit(main())
