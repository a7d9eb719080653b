# Throwaway MariaDB and PostgreSQL servers for the integration tests: each
# runs unprivileged (as nobody when the tests run as root) on 127.0.0.1 and a
# free port, with its data directory in a temp dir, and is stopped by PID.
# PostfixAdmin's queries and a dovecot-sql.conf.ext writer are at the end.
# Python 3.11 standard library only.

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import FIXTURES, free_tcp_port, write_file

DB_USER = "postfix"
DB_PASSWORD = "Db-user-Pa55-8a1e"   # in harness.SECRETS via the test modules
DB_NAME = "postfix"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0

PG_BIN = "/usr/lib/postgresql/15/bin"


def _which(*names):
    for n in names:
        p = shutil.which(n) or next((os.path.join(d, n) for d in ("/usr/sbin", "/usr/bin", PG_BIN)
                                     if os.access(os.path.join(d, n), os.X_OK)), None)
        if p:
            return p
    return None


MARIADBD = _which("mariadbd", "mysqld")
MARIADB_INSTALL_DB = _which("mariadb-install-db", "mysql_install_db")
MARIADB = _which("mariadb", "mysql")
PG_INITDB = os.path.join(PG_BIN, "initdb") if os.access(os.path.join(PG_BIN, "initdb"), os.X_OK) \
    else _which("initdb")
PG_POSTGRES = os.path.join(PG_BIN, "postgres") if os.access(os.path.join(PG_BIN, "postgres"), os.X_OK) \
    else _which("postgres")
PSQL = _which("psql")


def mariadb_missing():
    if not (MARIADBD and MARIADB_INSTALL_DB and MARIADB):
        return "mariadb-server not installed"
    return None


def postgres_missing():
    if not (PG_INITDB and PG_POSTGRES and PSQL):
        return "postgresql not installed"
    return None


def _run_as():
    """Keyword arguments for Popen: run as nobody when we are root (neither
    server may run as root), else as ourselves."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


def _chown_tree(path):
    if os.geteuid() != 0:
        return
    nobody = pwd.getpwnam("nobody")
    for root, dirs, files in os.walk(path):
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        for f in files:
            os.chown(os.path.join(root, f), nobody.pw_uid, nobody.pw_gid)


def _wait_port(port, proc, log_path, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"database server exited with {proc.returncode}:\n{_tail(log_path)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"database server not listening on {port}:\n{_tail(log_path)}")


def _tail(path, n=4000):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


class _Server:
    kind = "?"

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix=f"postern-{self.kind}-")
        os.chmod(self.base, 0o755)
        self.datadir = os.path.join(self.base, "data")
        self.sockdir = os.path.join(self.base, "run")
        self.log_path = os.path.join(self.base, "server.log")
        os.makedirs(self.sockdir)
        _chown_tree(self.base)
        self.port = free_tcp_port()
        self.proc = None
        self._log = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _popen(self, argv):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, start_new_session=True, cwd=self.base,
                                     **_run_as())
        _wait_port(self.port, self.proc, self.log_path)

    def stop(self, sig=signal.SIGTERM):
        """Stops the server by PID (graceful signal, then SIGKILL)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None

    def _wait_ready(self, probe):
        """The port opens before some servers answer queries (PostgreSQL
        says "the database system is starting up"): retry a trivial query."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                probe()
                return
            except AssertionError:
                if time.monotonic() > deadline or not self.running():
                    raise
                time.sleep(0.1)

    def kill(self):
        """Abrupt stop (SIGKILL), like a crashed server."""
        self.stop(signal.SIGKILL)

    def destroy(self):
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


class MariaDB(_Server):
    kind = "mariadb"

    def __init__(self):
        super().__init__()
        self.socket = os.path.join(self.sockdir, "mysqld.sock")
        self._installed = False

    def start(self):
        if not self._installed:
            p = subprocess.run([MARIADB_INSTALL_DB, "--no-defaults", f"--datadir={self.datadir}",
                                "--auth-root-authentication-method=normal", "--skip-test-db",
                                "--skip-name-resolve"],
                               capture_output=True, text=True, timeout=180, cwd=self.base,
                               **_run_as())
            if p.returncode != 0:
                raise AssertionError(f"mariadb-install-db failed:\n{p.stdout}{p.stderr}")
            self._installed = True
        self._popen([MARIADBD, "--no-defaults", f"--datadir={self.datadir}",
                     f"--socket={self.socket}", f"--port={self.port}", "--bind-address=127.0.0.1",
                     f"--pid-file={os.path.join(self.sockdir, 'mysqld.pid')}",
                     "--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=32M",
                     "--innodb-log-file-size=16M", "--innodb-flush-log-at-trx-commit=0",
                     "--max-connections=300", f"--log-error={self.log_path}"])
        self._wait_ready(lambda: self.sql("SELECT 1", timeout=10))
        return self

    def sql(self, text, database=None, timeout=120):
        """Runs SQL as the server's root user over the unix socket."""
        argv = [MARIADB, "--no-defaults", f"--socket={self.socket}", "-uroot", "--batch",
                "--default-character-set=utf8mb4",
                "--skip-column-names"]
        if database:
            argv.append(database)
        p = subprocess.run(argv, input=text, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise AssertionError(f"mariadb: {p.stderr}")
        return p.stdout

    def session(self, database=None):
        """An interactive client as root on stdin (a transaction held open
        across test steps); write statements, then close stdin."""
        argv = [MARIADB, "--no-defaults", f"--socket={self.socket}", "-uroot", "--batch", "--unbuffered",
                "--default-character-set=utf8mb4"]
        if database:
            argv.append(database)
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    def setup_postfixadmin(self):
        self.sql(f"CREATE DATABASE {DB_NAME};\n"
                 f"CREATE USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASSWORD}';\n"
                 f"CREATE USER '{DB_USER}'@'localhost' IDENTIFIED BY '{DB_PASSWORD}';\n"
                 f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'127.0.0.1';\n"
                 f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'localhost';\n")
        with open(os.path.join(FIXTURES, "postfixadmin-mysql.sql"), encoding="utf-8") as f:
            self.sql(f.read(), DB_NAME)

    def connect_string(self, **extra):
        parts = [f"host=127.0.0.1 port={self.port} dbname={DB_NAME} user={DB_USER} "
                 f"password={DB_PASSWORD}"]
        parts += [f"{k}={v}" for k, v in extra.items()]
        return " ".join(parts)

    driver = "mysql"

    @staticmethod
    def quote(value):
        """A string literal for test data."""
        return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


class PostgreSQL(_Server):
    kind = "pgsql"

    def __init__(self):
        super().__init__()
        self._installed = False

    def start(self):
        if not self._installed:
            pwfile = os.path.join(self.base, "pw")
            with open(pwfile, "w", encoding="ascii") as f:
                f.write("unused-superuser-password\n")
            _chown_tree(self.base)
            p = subprocess.run([PG_INITDB, "-D", self.datadir, "-U", "postgres", "-E", "UTF8",
                                "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256",
                                f"--pwfile={pwfile}", "--no-sync"],
                               capture_output=True, text=True, timeout=180, cwd=self.base,
                               **_run_as())
            if p.returncode != 0:
                raise AssertionError(f"initdb failed:\n{p.stdout}{p.stderr}")
            self._installed = True
        self._popen([PG_POSTGRES, "-D", self.datadir, "-k", self.sockdir, "-p", str(self.port),
                     "-h", "127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                     "-c", "full_page_writes=off", "-c", "max_connections=300",
                     "-c", "shared_buffers=32MB"])
        self._wait_ready(lambda: self.sql("SELECT 1", timeout=10))
        return self

    def stop(self, sig=signal.SIGINT):
        # SIGINT is PostgreSQL's fast shutdown (SIGTERM waits for clients).
        super().stop(sig)

    def sql(self, text, database="postgres", timeout=120):
        p = subprocess.run([PSQL, "-h", self.sockdir, "-p", str(self.port), "-U", "postgres",
                            "-d", database, "-v", "ON_ERROR_STOP=1", "-q", "-A", "-t", "-X"],
                           input=text, capture_output=True, text=True, timeout=timeout,
                           **_run_as())
        if p.returncode != 0:
            raise AssertionError(f"psql: {p.stderr}")
        return p.stdout

    def session(self, database="postgres"):
        """As MariaDB.session."""
        return subprocess.Popen([PSQL, "-h", self.sockdir, "-p", str(self.port), "-U", "postgres", "-d", database,
                                 "-v", "ON_ERROR_STOP=1", "-q", "-A", "-t", "-X"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                **_run_as())

    def setup_postfixadmin(self):
        self.sql(f"CREATE ROLE {DB_USER} LOGIN PASSWORD '{DB_PASSWORD}';\n")
        self.sql(f"CREATE DATABASE {DB_NAME} OWNER {DB_USER};\n")
        with open(os.path.join(FIXTURES, "postfixadmin-pgsql.sql"), encoding="utf-8") as f:
            schema = f.read()
        self.sql(f"SET ROLE {DB_USER};\n" + schema, DB_NAME)

    def connect_string(self, **extra):
        parts = [f"host=127.0.0.1 port={self.port} dbname={DB_NAME} user={DB_USER} "
                 f"password={DB_PASSWORD}"]
        parts += [f"{k}={v}" for k, v in extra.items()]
        return " ".join(parts)

    driver = "pgsql"

    @staticmethod
    def quote(value):
        """A string literal for test data (standard_conforming_strings)."""
        return "'" + value.replace("'", "''") + "'"




class ServerSet:
    """MariaDB and PostgreSQL for one test module, started in parallel with
    PostfixAdmin's schema and `load(server)` applied; a server that cannot
    start is left out and its reason kept for the tests that need it."""

    def __init__(self, load):
        self.load = load
        self.servers = {}   # driver ("mysql", "pgsql") -> server
        self.errors = {}    # driver -> why it is not there

    def _start(self, cls):
        s = None
        try:
            s = cls()
            s.start()
            s.setup_postfixadmin()
            self.load(s)
            self.servers[s.driver] = s
        except Exception as e:  # reported by the tests that need this server
            self.errors[cls.driver] = str(e)
            if s is not None:
                s.destroy()

    def start(self):
        threads = []
        for cls, missing in ((MariaDB, mariadb_missing()), (PostgreSQL, postgres_missing())):
            if missing:
                self.errors[cls.driver] = missing
                continue
            t = threading.Thread(target=self._start, args=(cls,))
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        return self

    def destroy(self):
        for s in self.servers.values():
            s.destroy()
        self.servers.clear()

    def get(self, driver):
        """The running server, or unittest.SkipTest saying why not."""
        if driver not in self.servers:
            raise unittest.SkipTest(f"{driver} server unavailable: {self.errors.get(driver, 'not started')}")
        return self.servers[driver]


# PostfixAdmin's recommended queries and a dovecot-sql.conf.ext using them
# (test_sql.py, test_audit.py).
PFA_PASSWORD_QUERY = ("SELECT m.username AS user, m.password FROM mailbox m "
                      "JOIN domain d ON d.domain = m.domain "
                      "WHERE m.username = '%u' AND m.active = '1' AND d.active = '1'")
PFA_USER_QUERY = {
    "mysql": ("SELECT CONCAT('/var/vmail/', maildir) AS home, 2000 AS uid, 2000 AS gid, "
              "CONCAT('*:bytes=', quota) AS quota_rule FROM mailbox "
              "WHERE username = '%u' AND active = '1'"),
    "pgsql": ("SELECT '/var/vmail/' || maildir AS home, 2000 AS uid, 2000 AS gid, "
              "'*:bytes=' || quota AS quota_rule FROM mailbox "
              "WHERE username = '%u' AND active = '1'"),
}
PFA_ITERATE_QUERY = "SELECT username AS user FROM mailbox WHERE active = '1'"


def mailbox_insert(server, user, stored, active="1"):
    """An INSERT of one PostfixAdmin mailbox row (user is local@domain)."""
    local, _, domain = user.partition("@")
    q = server.quote
    return (f"INSERT INTO mailbox (username, password, name, maildir, quota, local_part, domain, "
            f"active) VALUES ({q(user)}, {q(stored)}, '', {q(domain + '/' + local + '/')}, 0, "
            f"{q(local)}, {q(domain)}, '{active}');\n")


def sql_file(path, server, password_query=PFA_PASSWORD_QUERY, user_query=None, iterate_query=None,
             connect=None, scheme="SHA512-CRYPT", update_query=None):
    """Writes a dovecot-sql.conf.ext for server at path (PostfixAdmin's
    recommended queries unless given) and returns path."""
    lines = [f"# dovecot-sql.conf.ext for {server.driver}",
             f"driver = {server.driver}",
             f"connect = {connect if connect is not None else server.connect_string()}",
             f"default_pass_scheme = {scheme}",
             f"password_query = {password_query}",
             f"user_query = {user_query or PFA_USER_QUERY[server.driver]}",
             f"iterate_query = {iterate_query or PFA_ITERATE_QUERY}"]
    if update_query:
        lines.append(f"update_query = {update_query}")
    write_file(path, "\n".join(lines) + "\n", 0o644)
    return path
