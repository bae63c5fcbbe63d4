# A file removed while open (also a lower file, copied up when opened for writing): written, read,
# truncated and stat'ed through the descriptor after the unlink; a second name of a hard link too.
import os
def check(path, lower):
    fd = os.open(path, os.O_RDWR | (0 if lower else os.O_CREAT), 0o640)
    if not lower:
        os.write(fd, b"x" * 100000)
    os.unlink(path)
    assert not os.path.exists(path)
    os.lseek(fd, 0, os.SEEK_END)
    os.write(fd, b"tail")
    st = os.fstat(fd)
    os.ftruncate(fd, st.st_size - 2)
    os.fchmod(fd, 0o600)
    st = os.fstat(fd)
    os.lseek(fd, max(0, st.st_size - 10), os.SEEK_SET)
    end = os.read(fd, 10)
    print(path, st.st_size, oct(st.st_mode & 0o777), st.st_nlink, end[-4:])
    os.close(fd)
check("/tmp/new-file", False)
check("/etc/debian_version", True)
with open("/var/tmp/a", "w") as f:
    f.write("a" * 5000)
os.link("/var/tmp/a", "/var/tmp/b")
fd = os.open("/var/tmp/a", os.O_RDWR)
os.unlink("/var/tmp/a")
os.write(fd, b"B")
print("link", os.fstat(fd).st_nlink, open("/var/tmp/b").read(3))
os.close(fd)
