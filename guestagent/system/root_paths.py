"""Paths under one root directory, reached without trusting planted links.

`System` (guestagent/system/__init__.py) is the one object steps use; this module is
how it finds a path inside its root: ``/`` on a real boot, a scratch tree
under ``--root``.  Reads resolve every symlink as if chrooted, so an image's
absolute link never leads to the host's file; writes open each directory on
the way with ``O_NOFOLLOW`` (`RootPaths.open_dir`) and follow only links
that root owns in a directory only root can write (``/lib -> usr/lib`` on
merged-/usr systems), resolved inside the root.
"""

import errno
import os
import stat

_MAX_LINKS = 16


class UnsafePathError(OSError):
    """A path could be redirected by someone other than root, or leaves the root."""


class RootPaths:
    """The root directory, and the way to a path inside it."""

    def __init__(self, root="/"):
        self.root = os.path.abspath(root)
        self.live = self.root == "/"

    def path(self, path):
        """Host path of ``path`` (an absolute path inside the root).

        Every symlink on the way to the last component is resolved as if
        chrooted, so an image's absolute link (``/var/run -> /run``) leads
        to ROOT/run, never to the host's /run; the last component is left
        as named (it may be a link the caller means to inspect).  Only for
        reading and for handing to commands: writes go through
        `write_file`, which does not trust symlinks.
        """
        rel = relative(path)
        if self.root == "/":
            return "/" + rel
        if not rel:
            return self.root
        host = self.resolve(path, follow_last=False, missing_ok=True)
        if host is None:
            raise UnsafePathError(errno.ELOOP, "too many levels of symbolic links", path)
        return host

    def command_path(self, path):
        """Host path of ``path`` for a command, refusing one that leaves the root.

        Commands resolve links on the host: under --root, a tree whose /etc (or
        /etc/ssh) is a link would have useradd or ssh-keygen change the host's
        files, so any link on the way is refused.
        """
        host = self.path(path)
        if self.live:
            return host
        real_root = os.path.realpath(self.root)
        expected = os.path.join(real_root, host[len(self.root):].lstrip("/"))
        if os.path.realpath(host) != expected.rstrip("/"):
            raise UnsafePathError(errno.ELOOP, "refusing: a symlink on the way would take "
                                  "commands outside the root", path)
        return host

    def check_tool_path(self, path, tool):
        """Refuse (UnsafePathError naming ``path``) when a host tool given
        ROOT/``path`` would follow a link in the image out of the root.

        A tool run with --prefix cannot be confined: it resolves the image's
        absolute links (``/home -> /srv/home``) on the host.  So the path is
        checked the way the tool will see it, before the tool runs."""
        if self.live:
            return
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(os.path.join(self.root, path.lstrip("/")))
        if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
            raise UnsafePathError(errno.EXDEV, f"refusing to run {tool}: {path} in the image "
                                  f"leads to {real}, outside the root", path)

    def open_dir(self, path, create=False, mode=0o755, trusted_uids=(0,)):
        """Open a directory inside the root without following untrusted links."""
        parts = [p for p in relative(path).split("/") if p]
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        links = 0
        try:
            while parts:
                part = parts.pop(0)
                if part == "..":
                    raise UnsafePathError(errno.EINVAL, "'..' in path", path)
                try:
                    nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                  | os.O_CLOEXEC, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(part, mode, dir_fd=fd)
                    except FileExistsError:
                        pass
                    parts.insert(0, part)
                    continue
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    target = self._trusted_link(fd, part, path)
                    links += 1
                    if links > _MAX_LINKS:
                        raise UnsafePathError(errno.ELOOP, "too many links", path) from None
                    if target.startswith("/"):
                        os.close(fd)
                        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                        # a link to an absolute path restarts at the root
                    parts[:0] = [p for p in target.split("/") if p and p != "."]
                    continue
                st = os.fstat(nfd)
                os.close(fd)
                fd = nfd
                if st.st_uid not in trusted_uids:
                    os.close(fd)
                    fd = -1
                    raise UnsafePathError(errno.EPERM, f"directory owned by uid {st.st_uid}",
                                          path)
            return fd
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise

    def _trusted_link(self, dfd, name, path):
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            raise UnsafePathError(errno.ENOTDIR, f"{name} is not a directory", path)
        dst = os.fstat(dfd)
        if st.st_uid != 0 or dst.st_uid != 0 or dst.st_mode & 0o022:
            raise UnsafePathError(errno.ELOOP, f"refusing to follow symlink {name!r}", path)
        target = os.readlink(name, dir_fd=dfd)
        if ".." in target.split("/"):
            # resolve '..' lexically against the link's place is not possible
            # from a dir fd; such links are rare in system trees
            raise UnsafePathError(errno.ELOOP, f"refusing symlink with '..': {name}", path)
        return target

    def resolve(self, path, follow_last=True, missing_ok=False):
        """Host path of ``path`` with every symlink resolved as if chrooted.

        None when a component is missing (or, with ``follow_last``, when the
        final link dangles); with ``missing_ok`` the missing rest is appended
        as named instead.  For reading and inspecting only: writes go
        through `write_file`, which trusts no link it did not check.
        """
        todo = [p for p in relative(path).split("/") if p]
        done = []
        links = 0
        missing = False
        while todo:
            part = todo.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            if missing:
                done.append(part)
                continue
            host = os.path.join(self.root, *done, part)
            try:
                st = os.lstat(host)
            except OSError:
                if not missing_ok:
                    return None
                missing = True
                done.append(part)
                continue
            if stat.S_ISLNK(st.st_mode) and (todo or follow_last):
                links += 1
                if links > _MAX_LINKS:
                    return None
                target = os.readlink(host)
                if target.startswith("/"):
                    done = []
                todo[:0] = [p for p in target.split("/") if p and p != "."]
                continue
            done.append(part)
        return os.path.join(self.root, *done)

def relative(path):
    """'/etc/hostname' -> 'etc/hostname'; refuses '..' and NUL."""
    path = os.fspath(path)
    if "\0" in path:
        raise UnsafePathError(errno.EINVAL, "NUL in path", path)
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise UnsafePathError(errno.EINVAL, "'..' in path", path)
    return "/".join(parts)
