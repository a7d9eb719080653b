# A throwaway OpenLDAP slapd for the integration tests: slapd.conf with an
# mdb database in a temp dir, Debian's core/cosine/inetorgperson/nis schemas
# plus a two-attribute mail schema (iRedMail-like: accountStatus), listening
# on 127.0.0.1 (ldap:// and, with a test CA, ldaps://), loaded with ldapadd
# and stopped by the PID in its pidfile. Python 3.11 standard library only.

import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse

from harness import POSTERN, free_tcp_port, register_secret, sha512_crypt, write_file

SCHEMA_DIR = "/etc/ldap/schema"
SUFFIX = "dc=example,dc=com"
ROOT_DN = "cn=admin," + SUFFIX
ROOT_PW = "Ldap-Root-Pa55-6b1d"
SERVICE_DN = "cn=postern,ou=services," + SUFFIX
SERVICE_PW = "Ldap-Service-Pa55-2f9a"
# A second service account that may write userPassword (postern user passwd,
# rehash on login); SERVICE_DN may only read it.
WRITER_DN = "cn=postern-writer,ou=services," + SUFFIX
WRITER_PW = "Ldap-Writer-Pa55-8c3e"
USERS_BASE = "ou=users,domainName=example.com,o=domains," + SUFFIX
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

for _s in (ROOT_PW, SERVICE_PW, WRITER_PW):
    register_secret(_s)


def _which(name):
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}")
                                       if os.access(p, os.X_OK)), None)


SLAPD = _which("slapd")
LDAPADD = _which("ldapadd")
LDAPSEARCH = _which("ldapsearch")
LDAPWHOAMI = _which("ldapwhoami")
OPENSSL = _which("openssl")


def slapd_missing():
    if not SLAPD or not LDAPADD or not LDAPSEARCH or not LDAPWHOAMI:
        return "slapd or ldap-utils not installed (contrib/install-deps.sh --test)"
    for s in ("core", "cosine", "inetorgperson", "nis"):
        if not os.path.exists(os.path.join(SCHEMA_DIR, f"{s}.schema")):
            return f"{SCHEMA_DIR}/{s}.schema missing (Debian slapd)"
    return None


# Private arc: test data only.
MAIL_SCHEMA = """\
attributetype ( 1.3.6.1.4.1.99999.17.1 NAME 'accountStatus'
    DESC 'active or disabled' EQUALITY caseIgnoreMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{64} SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.17.2 NAME 'mailMessageStore'
    EQUALITY caseExactIA5Match SYNTAX 1.3.6.1.4.1.1466.115.121.1.26 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.17.4 NAME 'domainName'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{255} )
objectclass ( 1.3.6.1.4.1.99999.17.3 NAME 'mailUser' SUP top AUXILIARY
    MAY ( accountStatus $ mailMessageStore ) )
objectclass ( 1.3.6.1.4.1.99999.17.5 NAME 'mailDomain' SUP top STRUCTURAL
    MUST domainName )
"""


def user_password(i):
    return f"Ldap-User-Pa55-{i:03d}-q7"


def ssha(password):
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def postern_hash(scheme, password):
    p = subprocess.run([POSTERN, "pw", "-s", scheme], input=password + "\n", capture_output=True,
                       text=True, timeout=60)
    out = p.stdout.strip()
    if p.returncode != 0 or not out.startswith("{"):
        raise AssertionError(f"postern pw -s {scheme} failed: {p.stderr}")
    return out


class User:
    def __init__(self, i, scheme, stored, mails, active=True):
        self.i, self.scheme, self.stored, self.mails, self.active = i, scheme, stored, mails, active
        self.login = mails[0]
        self.password = user_password(i)
        self.uid = f"user{i:03d}"


def make_users(n=300, argon2_count=6):
    """Users in four stored forms: cleartext, {SSHA}, {CRYPT}$6$ and
    {ARGON2ID} (made by postern pw; only a few: each takes a while)."""
    users = []
    argon_left = argon2_count
    for i in range(n):
        pw = user_password(i)
        register_secret(pw)
        kind = i % 4
        if kind == 3 and argon_left > 0:
            stored, scheme = postern_hash("ARGON2ID", pw), "ARGON2ID"
            argon_left -= 1
        elif kind == 2:
            h = sha512_crypt(pw, rounds=5000)
            stored, scheme = ("{CRYPT}" + h, "CRYPT") if h else (ssha(pw), "SSHA")
        elif kind == 0:
            stored, scheme = pw, "PLAIN"     # cleartext, no {SCHEME}: default_pass_scheme
        else:
            stored, scheme = ssha(pw), "SSHA"
        register_secret(stored)
        mails = [f"user{i:03d}@example.com"]
        if i == 7:
            mails.append(f"alias{i:03d}@example.com")
        users.append(User(i, scheme, stored, mails, active=(i != 5)))
    return users


def users_ldif(users):
    out = [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
           f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n",
           f"dn: {SERVICE_DN}\nobjectClass: simpleSecurityObject\nobjectClass: organizationalRole\n"
           f"cn: postern\nuserPassword: {SERVICE_PW}\n",
           f"dn: {WRITER_DN}\nobjectClass: simpleSecurityObject\nobjectClass: organizationalRole\n"
           f"cn: postern-writer\nuserPassword: {WRITER_PW}\n",
           f"dn: o=domains,{SUFFIX}\nobjectClass: organization\no: domains\n",
           f"dn: domainName=example.com,o=domains,{SUFFIX}\nobjectClass: mailDomain\ndomainName: example.com\n",
           f"dn: {USERS_BASE}\nobjectClass: organizationalUnit\nou: users\n"]
    for u in users:
        mails = "".join(f"mail: {m}\n" for m in u.mails)
        # The user with two mail values has two numeric roomNumber values
        # too: a multi-valued attribute to map to a userdb gid.
        if len(u.mails) > 1:
            mails += f"roomNumber: 5000\nroomNumber: {6000 + u.i}\n"
        stored = base64.b64encode(u.stored.encode()).decode()
        out.append(f"dn: mail={u.login},{USERS_BASE}\n"
                   "objectClass: inetOrgPerson\nobjectClass: posixAccount\nobjectClass: mailUser\n"
                   f"cn: User {u.i}\nsn: {u.i}\nuid: {u.uid}\n{mails}"
                   f"uidNumber: {5000 + u.i}\ngidNumber: 5000\n"
                   f"homeDirectory: /var/vmail/example.com/{u.uid}\n"
                   f"mailMessageStore: example.com/{u.uid}/Maildir\n"
                   f"accountStatus: {'active' if u.active else 'disabled'}\n"
                   f"userPassword:: {stored}\n")
    return "\n".join(out)


def make_ca(workdir):
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost.
    Returns (ca_cert, server_cert, server_key) paths, or None without openssl."""
    if not OPENSSL:
        return None
    ca_key, ca_crt = os.path.join(workdir, "ca.key"), os.path.join(workdir, "ca.crt")
    key, csr, crt = (os.path.join(workdir, n) for n in ("server.key", "server.csr", "server.crt"))
    ext = os.path.join(workdir, "server.ext")
    write_file(ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    cmds = [[OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_crt,
             "-days", "2", "-subj", "/CN=postern test CA"],
            [OPENSSL, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
             "-subj", "/CN=127.0.0.1"],
            [OPENSSL, "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
             "-out", crt, "-days", "2", "-extfile", ext]]
    for c in cmds:
        subprocess.run(c, check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o644)
    return ca_crt, crt, key


class Slapd:
    """One slapd on 127.0.0.1; start() creates and loads it, stop() ends it."""

    def __init__(self, workdir, users, tls=None, ldapi=False):
        self.dir = os.path.join(workdir, "slapd")
        self.ldapi = ldapi
        self.port = free_tcp_port()
        self.ldaps_port = free_tcp_port() if tls else None
        self.users = users
        self.tls = tls
        self.proc = None
        self.loaded = False

    @property
    def uri(self):
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldapi_uri(self):
        """The unix socket slapd listens on with ldapi=True (SASL EXTERNAL
        binds there carry the client's uid and gid)."""
        return "ldapi://" + urllib.parse.quote(os.path.join(self.dir, "ldapi"), safe="")

    @property
    def ldaps_uri(self):
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    def _write_config(self):
        os.makedirs(os.path.join(self.dir, "db"), exist_ok=True)
        write_file(os.path.join(self.dir, "mail.schema"), MAIL_SCHEMA)
        includes = "".join(f"include {SCHEMA_DIR}/{s}.schema\n" for s in ("core", "cosine", "inetorgperson", "nis"))
        tls = ""
        if self.tls:
            ca, crt, key = self.tls
            tls = f"TLSCACertificateFile {ca}\nTLSCertificateFile {crt}\nTLSCertificateKeyFile {key}\n"
        write_file(os.path.join(self.dir, "slapd.conf"), f"""\
{includes}include {self.dir}/mail.schema
pidfile {self.dir}/slapd.pid
argsfile {self.dir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
sizelimit unlimited
# No per-operation log lines (slapd's default is "stats", to syslog).
loglevel 0
{tls}
database mdb
maxsize 268435456
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PW}
directory {self.dir}/db
# objectClass too: back-mdb ORs every filter with (objectClass=referral),
# and without this index that term is every entry (a scan per search).
index objectClass eq
index mail,uid,accountStatus eq
access to attrs=userPassword
    by dn.exact="{WRITER_DN}" write
    by dn.exact="{SERVICE_DN}" read
    by dn.regex="^gidNumber=[0-9]+[+]uidNumber=[0-9]+,cn=peercred,cn=external,cn=auth$" read
    by anonymous auth
    by * none
access to * by * read
""")

    def start(self):
        if self.proc is None:
            self._write_config()
        urls = self.uri + "/"
        if self.ldaps_port:
            urls += " " + self.ldaps_uri + "/"
        if self.ldapi:
            urls += " " + self.ldapi_uri
        self.log = open(os.path.join(self.dir, "slapd.log"), "ab")
        # -d 0: stay in the foreground (stopped by PID), no debug output.
        self.proc = subprocess.Popen([SLAPD, "-f", os.path.join(self.dir, "slapd.conf"), "-h", urls, "-d", "0"],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"slapd exited with {self.proc.returncode}: {self.log_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError("slapd did not listen in time")
        if not self.loaded:
            ldif = os.path.join(self.dir, "data.ldif")
            write_file(ldif, users_ldif(self.users))
            p = subprocess.run([LDAPADD, "-x", "-H", self.uri, "-D", ROOT_DN, "-w", ROOT_PW, "-f", ldif],
                               capture_output=True, text=True, timeout=120)
            if p.returncode != 0:
                raise AssertionError(f"ldapadd failed: {p.stderr[-2000:]}")
            self.loaded = True
        return self

    def log_text(self):
        try:
            with open(os.path.join(self.dir, "slapd.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


def ldap_conf(slapd, *, uris=None, auth_bind=False, dn=SERVICE_DN, dnpass=SERVICE_PW, extra=""):
    """A dovecot-ldap.conf.ext for the iRedMail-like layout."""
    lines = [f"uris = {uris or slapd.uri}",
             f"dn = {dn}",
             f"dnpass = {dnpass}",
             "ldap_version = 3",
             f"base = o=domains,{SUFFIX}",
             "scope = subtree",
             "deref = never",
             "pass_filter = (&(objectClass=mailUser)(accountStatus=active)(mail=%u))",
             "pass_attrs = mail=user,userPassword=password",
             "user_filter = (&(objectClass=mailUser)(accountStatus=active)(mail=%u))",
             "user_attrs = \\\n  =user=%{ldap:mail}, uidNumber=uid, gidNumber=gid, \\\n"
             "  homeDirectory=home, =mail=maildir:/var/vmail/%{ldap:mailMessageStore}",
             "iterate_filter = (&(objectClass=mailUser)(accountStatus=active))",
             "iterate_attrs = mail=user",
             "default_pass_scheme = PLAIN"]
    if auth_bind:
        lines.append("auth_bind = yes")
    return "\n".join(lines) + "\n" + extra


def stored_password(slapd, login):
    """userPassword of the user's entry as slapd has it (read as the root DN)."""
    p = subprocess.run([LDAPSEARCH, "-x", "-LLL", "-o", "ldif-wrap=no", "-H", slapd.uri, "-D", ROOT_DN,
                        "-w", ROOT_PW, "-b", USERS_BASE, f"(mail={login})", "userPassword"],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError(f"ldapsearch failed: {p.stderr[-2000:]}")
    for line in p.stdout.splitlines():
        if line.startswith("userPassword:: "):
            return base64.b64decode(line[len("userPassword:: "):]).decode()
        if line.startswith("userPassword: "):
            return line[len("userPassword: "):]
    return None


def simple_bind_works(slapd, login, password):
    """Whether slapd itself accepts the password on a bind as the user's DN."""
    p = subprocess.run([LDAPWHOAMI, "-x", "-H", slapd.uri, "-D", f"mail={login},{USERS_BASE}", "-w", password],
                       capture_output=True, text=True, timeout=30)
    return p.returncode == 0


def wait_until(predicate, timeout=20, interval=0.1):
    """Polls predicate until it is true or the timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
