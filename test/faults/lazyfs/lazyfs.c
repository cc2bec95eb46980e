/*
 * lazyfs: a FUSE filesystem for raftkv's fault suite that loses what a real disk loses on a power
 * cut. Every operation passes through at once to a "live" directory, so processes see an ordinary
 * filesystem; beside it the daemon keeps the *durable* image: per file, the content as of its last
 * fsync/fdatasync, and per directory, its entries as of its last fsync. A power cut (the control
 * command `cut`) throws the live tree away and rebuilds it from the durable image, so
 *   - data written but not fsynced is gone (the file keeps its content as of its last sync);
 *   - a create, rename, unlink, link, mkdir or rmdir is undone unless its directory was fsynced
 *     afterwards (a file that was fsynced but whose name never was is gone entirely).
 * Also on command: fsync/fdatasync/fsyncdir fail with EIO (`fail-sync on`), and a byte quota makes
 * writes fail with ENOSPC (`quota N`). Built and driven by lazyfs.ts; described in docs/power-loss.md.
 *
 * Usage: lazyfs <backing-dir> <mountpoint> <control-socket>
 *   backing-dir must be empty or absent; live/ and durable/ are made under it.
 *   The control socket takes one command per line and answers one line: "ok ..." or "err ...".
 *   Commands: ping | cut | fail-sync on|off | quota <bytes>|off | usage
 *
 * Single-threaded FUSE loop plus one control thread; one mutex serialises them.
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <fuse.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

/* One inode of the filesystem, identified by our own id (stable across power cuts). */
struct dent {
  char *name;
  uint64_t id;
};

struct ino {
  uint64_t id;
  int is_dir;
  mode_t mode;
  /* Linked in the live tree: st_ino is its live inode number (valid only while linked). */
  int linked;
  ino_t st_ino;
  /* Files: the range written since the last sync, and the smallest size since then. */
  off_t dirty_lo, dirty_hi;
  off_t trunc_lo;
  /* Files: durable content exists as durable/<id>. */
  int has_obj;
  /* Directories: the durable entries, or NULL when the directory was never synced. */
  struct dent *dd;
  int dd_n;
  int dd_is_set;
  /* Scratch for walks of the durable tree. */
  int mark;
};

/* An open file or directory. */
struct handle {
  int fd;
  uint64_t id;
  uint64_t gen;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int live_fd = -1;
static int dur_fd = -1;
static char *ctl_path;
static char *live_path;
static uint64_t gen = 1;
static int fail_sync = 0;
static long long quota = -1;
static long long used = 0;
static unsigned long long cuts = 0, syncs = 0, failed_syncs = 0, enospc = 0;

static struct ino **inos; /* by id */
static uint64_t n_ids = 0, cap_ids = 0;

#define NBUCKET 4096
struct stmap {
  ino_t st_ino;
  uint64_t id;
  struct stmap *next;
};
static struct stmap *buckets[NBUCKET];

static void logmsg(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "lazyfs: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

static void *xcalloc(size_t n, size_t s) {
  void *p = calloc(n, s);
  if (!p) {
    logmsg("out of memory");
    abort();
  }
  return p;
}

static struct ino *new_ino(int is_dir, mode_t mode) {
  if (n_ids + 1 >= cap_ids) {
    cap_ids = cap_ids ? cap_ids * 2 : 1024;
    inos = realloc(inos, cap_ids * sizeof(*inos));
    if (!inos) abort();
  }
  struct ino *i = xcalloc(1, sizeof(*i));
  i->id = ++n_ids;
  i->is_dir = is_dir;
  i->mode = mode & 07777;
  inos[i->id] = i;
  return i;
}

static struct ino *get_ino(uint64_t id) {
  return id >= 1 && id <= n_ids ? inos[id] : NULL;
}

static void map_put(ino_t st, uint64_t id) {
  struct stmap **b = &buckets[st % NBUCKET];
  for (struct stmap *m = *b; m; m = m->next) {
    if (m->st_ino == st) {
      m->id = id;
      return;
    }
  }
  struct stmap *m = xcalloc(1, sizeof(*m));
  m->st_ino = st;
  m->id = id;
  m->next = *b;
  *b = m;
}

static struct ino *map_get(ino_t st) {
  for (struct stmap *m = buckets[st % NBUCKET]; m; m = m->next)
    if (m->st_ino == st) return get_ino(m->id);
  return NULL;
}

static void map_del(ino_t st) {
  struct stmap **p = &buckets[st % NBUCKET];
  while (*p) {
    if ((*p)->st_ino == st) {
      struct stmap *m = *p;
      *p = m->next;
      free(m);
      return;
    }
    p = &(*p)->next;
  }
}

static void map_clear(void) {
  for (int b = 0; b < NBUCKET; b++) {
    while (buckets[b]) {
      struct stmap *m = buckets[b];
      buckets[b] = m->next;
      free(m);
    }
  }
}

/* FUSE paths start with '/': relative to live_fd ("." for the root). */
static const char *rel(const char *path) {
  if (!path) return NULL;
  while (*path == '/') path++;
  return *path ? path : ".";
}

static void obj_name(uint64_t id, char *buf, size_t n) {
  snprintf(buf, n, "%llu", (unsigned long long)id);
}

/* The inode of a live path, registering one (as new) if the live file is unknown. */
static struct ino *ino_of_stat(const struct stat *st) {
  struct ino *i = map_get(st->st_ino);
  if (i) return i;
  i = new_ino(S_ISDIR(st->st_mode), st->st_mode);
  i->linked = 1;
  i->st_ino = st->st_ino;
  map_put(st->st_ino, i->id);
  return i;
}

static struct ino *ino_of_path(const char *path, struct stat *st) {
  struct stat tmp;
  if (!st) st = &tmp;
  if (fstatat(live_fd, rel(path), st, AT_SYMLINK_NOFOLLOW) != 0) return NULL;
  return ino_of_stat(st);
}

static int make_obj(struct ino *i) {
  char name[32];
  obj_name(i->id, name, sizeof(name));
  int fd = openat(dur_fd, name, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return -errno;
  close(fd);
  i->has_obj = 1;
  i->dirty_lo = i->dirty_hi = 0;
  i->trunc_lo = 0;
  return 0;
}

static void mark_dirty(struct ino *i, off_t lo, off_t hi) {
  if (hi <= lo) return;
  if (i->dirty_hi <= i->dirty_lo) {
    i->dirty_lo = lo;
    i->dirty_hi = hi;
    return;
  }
  if (lo < i->dirty_lo) i->dirty_lo = lo;
  if (hi > i->dirty_hi) i->dirty_hi = hi;
}

static void mark_truncated(struct ino *i, off_t size) {
  if (size < i->trunc_lo) i->trunc_lo = size;
}

static struct handle *fh(struct fuse_file_info *fi) {
  return fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
}

static int stale(struct handle *h) {
  return h && h->gen != gen;
}

static int copy_range(int from, int to, off_t lo, off_t hi) {
  static char buf[1 << 20];
  while (lo < hi) {
    size_t want = (size_t)(hi - lo) < sizeof(buf) ? (size_t)(hi - lo) : sizeof(buf);
    ssize_t r = pread(from, buf, want, lo);
    if (r < 0) return -errno;
    if (r == 0) break;
    ssize_t done = 0;
    while (done < r) {
      ssize_t w = pwrite(to, buf + done, r - done, lo + done);
      if (w < 0) return -errno;
      done += w;
    }
    lo += r;
  }
  return 0;
}

/* fsync of a file: its durable content becomes its live content (all of it, whatever fd wrote it). */
static int sync_file(struct ino *i, int live) {
  if (!i->has_obj) return 0;
  char name[32];
  obj_name(i->id, name, sizeof(name));
  int ofd = openat(dur_fd, name, O_RDWR | O_CLOEXEC);
  if (ofd < 0) return -errno;
  struct stat ls, os;
  int rc = 0;
  if (fstat(live, &ls) != 0 || fstat(ofd, &os) != 0) {
    rc = -errno;
    goto out;
  }
  if (i->trunc_lo < os.st_size && ftruncate(ofd, i->trunc_lo) != 0) {
    rc = -errno;
    goto out;
  }
  if (i->dirty_hi > i->dirty_lo) {
    off_t hi = i->dirty_hi < ls.st_size ? i->dirty_hi : ls.st_size;
    if ((rc = copy_range(live, ofd, i->dirty_lo, hi)) != 0) goto out;
  }
  if (ftruncate(ofd, ls.st_size) != 0) {
    rc = -errno;
    goto out;
  }
  i->dirty_lo = i->dirty_hi = 0;
  i->trunc_lo = ls.st_size;
out:
  close(ofd);
  return rc;
}

static void free_dd(struct ino *d) {
  for (int k = 0; k < d->dd_n; k++) free(d->dd[k].name);
  free(d->dd);
  d->dd = NULL;
  d->dd_n = 0;
}

/* fsync of a directory: its durable entries become its live entries. */
static int sync_dir(struct ino *d, int dfd) {
  int fd = dup(dfd);
  if (fd < 0) return -errno;
  DIR *dir = fdopendir(fd);
  if (!dir) {
    close(fd);
    return -errno;
  }
  struct dent *e = NULL;
  int n = 0, cap = 0;
  rewinddir(dir);
  struct dirent *de;
  while ((de = readdir(dir)) != NULL) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    struct stat st;
    if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) continue;
    struct ino *c = ino_of_stat(&st);
    if (!c->is_dir && !c->has_obj && make_obj(c) != 0) continue;
    if (c->is_dir && !c->dd_is_set) c->dd_is_set = 1; /* exists durably, empty until synced itself */
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      e = realloc(e, cap * sizeof(*e));
      if (!e) abort();
    }
    e[n].name = strdup(de->d_name);
    e[n].id = c->id;
    n++;
  }
  closedir(dir);
  free_dd(d);
  d->dd = e;
  d->dd_n = n;
  d->dd_is_set = 1;
  return 0;
}

/* ---- the power cut ---- */

static int rm_tree_at(int dfd) {
  DIR *dir = fdopendir(dup(dfd));
  if (!dir) return -errno;
  rewinddir(dir); /* the duplicate shares the offset of dfd */
  struct dirent *de;
  int rc = 0;
  while ((de = readdir(dir)) != NULL) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    struct stat st;
    if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (sub >= 0) {
        rm_tree_at(sub);
        close(sub);
      }
      if (unlinkat(dfd, de->d_name, AT_REMOVEDIR) != 0) rc = -errno;
    } else if (unlinkat(dfd, de->d_name, 0) != 0) {
      rc = -errno;
    }
  }
  closedir(dir);
  return rc;
}

/* Path of the first live link made for each inode during a rebuild (for hard links). */
struct firstlink {
  int dfd;
  char *name;
};
static struct firstlink *firstlinks;

static long long files_after, dirs_after;

static int rebuild_at(struct ino *d, int dfd) {
  d->mark = 1;
  for (int k = 0; k < d->dd_n; k++) {
    struct ino *c = get_ino(d->dd[k].id);
    const char *name = d->dd[k].name;
    if (!c) continue;
    if (c->is_dir) {
      if (c->mark) continue; /* a directory cycle cannot be made with rename(2); be safe anyway */
      if (mkdirat(dfd, name, c->mode ? c->mode : 0755) != 0) return -errno;
      int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (sub < 0) return -errno;
      struct stat st;
      fstat(sub, &st);
      c->linked = 1;
      c->st_ino = st.st_ino;
      map_put(st.st_ino, c->id);
      dirs_after++;
      int rc = rebuild_at(c, sub);
      close(sub);
      if (rc) return rc;
      continue;
    }
    if (firstlinks[c->id].name) {
      if (linkat(firstlinks[c->id].dfd, firstlinks[c->id].name, dfd, name, 0) != 0) return -errno;
      continue;
    }
    char oname[32];
    obj_name(c->id, oname, sizeof(oname));
    int ofd = openat(dur_fd, oname, O_RDONLY | O_CLOEXEC);
    if (ofd < 0) return -errno;
    int lfd = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, c->mode ? c->mode : 0644);
    if (lfd < 0) {
      close(ofd);
      return -errno;
    }
    struct stat os, ls;
    fstat(ofd, &os);
    int rc = copy_range(ofd, lfd, 0, os.st_size);
    if (rc == 0 && ftruncate(lfd, os.st_size) != 0) rc = -errno;
    fstat(lfd, &ls);
    close(ofd);
    close(lfd);
    if (rc) return rc;
    c->mark = 1;
    c->linked = 1;
    c->st_ino = ls.st_ino;
    map_put(ls.st_ino, c->id);
    c->dirty_lo = c->dirty_hi = 0;
    c->trunc_lo = os.st_size;
    used += os.st_size;
    files_after++;
    firstlinks[c->id].dfd = dfd; /* valid while the rebuild of this directory runs only */
    firstlinks[c->id].name = strdup(name);
  }
  /* Hard links across directories would need the parent fd kept open; forget this directory's. */
  for (int k = 0; k < d->dd_n; k++) {
    struct ino *c = get_ino(d->dd[k].id);
    if (c && !c->is_dir && firstlinks[c->id].dfd == dfd && firstlinks[c->id].name) {
      free(firstlinks[c->id].name);
      firstlinks[c->id].name = NULL;
    }
  }
  return 0;
}

/* Drops everything not durable: rebuilds the live tree from the durable image; frees unreachable objects. */
static int power_cut(char *out, size_t outn) {
  long long dirty = 0;
  for (uint64_t id = 1; id <= n_ids; id++) {
    struct ino *i = inos[id];
    if (!i) continue;
    if (i->linked && !i->is_dir && i->dirty_hi > i->dirty_lo) dirty++;
    i->linked = 0;
    i->mark = 0;
  }
  gen++;
  cuts++;
  int rc = rm_tree_at(live_fd);
  if (rc) return rc;
  map_clear();
  struct stat rs;
  fstat(live_fd, &rs);
  struct ino *root = inos[1];
  root->linked = 1;
  root->st_ino = rs.st_ino;
  map_put(rs.st_ino, 1);
  firstlinks = xcalloc(n_ids + 1, sizeof(*firstlinks));
  files_after = dirs_after = 0;
  used = 0;
  rc = rebuild_at(root, live_fd);
  free(firstlinks);
  firstlinks = NULL;
  if (rc) return rc;
  /* Objects and inodes no longer reachable from the durable root are gone for good. */
  long long freed = 0;
  for (uint64_t id = 2; id <= n_ids; id++) {
    struct ino *i = inos[id];
    if (!i || i->mark) continue;
    if (i->has_obj) {
      char name[32];
      obj_name(id, name, sizeof(name));
      unlinkat(dur_fd, name, 0);
      freed++;
    }
    free_dd(i);
    free(i);
    inos[id] = NULL;
  }
  snprintf(out, outn, "ok cut files=%lld dirs=%lld dirty_files_dropped=%lld objects_freed=%lld", files_after, dirs_after, dirty, freed);
  return 0;
}

/* Frees the durable objects of inodes that are neither linked nor reachable from the durable root. */
static void mark_reachable(struct ino *d) {
  d->mark = 1;
  for (int k = 0; k < d->dd_n; k++) {
    struct ino *c = get_ino(d->dd[k].id);
    if (!c || c->mark) continue;
    c->mark = 1;
    if (c->is_dir) mark_reachable(c);
  }
}

static void collect_garbage(void) {
  for (uint64_t id = 1; id <= n_ids; id++)
    if (inos[id]) inos[id]->mark = 0;
  mark_reachable(inos[1]);
  for (uint64_t id = 2; id <= n_ids; id++) {
    struct ino *i = inos[id];
    if (!i || i->mark || i->linked || !i->has_obj) continue;
    char name[32];
    obj_name(id, name, sizeof(name));
    unlinkat(dur_fd, name, 0);
    i->has_obj = 0;
  }
}

/* The live inode of `path` was just unlinked (or replaced by a rename): forget it if that was its last name. */
static void forget_if_last(const struct stat *before) {
  if (S_ISDIR(before->st_mode) || before->st_nlink <= 1) {
    struct ino *i = map_get(before->st_ino);
    if (i) i->linked = 0;
    map_del(before->st_ino);
    if (S_ISREG(before->st_mode)) used -= before->st_size;
  }
}

/* ---- FUSE operations ---- */

#define LOCKED(expr)              \
  do {                            \
    pthread_mutex_lock(&mu);      \
    int rc_ = (expr);             \
    pthread_mutex_unlock(&mu);    \
    return rc_;                   \
  } while (0)

static int do_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  struct handle *h = fh(fi);
  if (stale(h)) return -EIO;
  if (h && h->fd >= 0) return fstat(h->fd, st) == 0 ? 0 : -errno;
  return fstatat(live_fd, rel(path), st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}
static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) { LOCKED(do_getattr(path, st, fi)); }

static int do_access(const char *path, int mask) {
  return faccessat(live_fd, rel(path), mask, AT_EACCESS) == 0 ? 0 : -errno;
}
static int op_access(const char *path, int mask) { LOCKED(do_access(path, mask)); }

static int op_release(const char *path, struct fuse_file_info *fi);

static int do_opendir(const char *path, struct fuse_file_info *fi) {
  struct ino *i = ino_of_path(path, NULL);
  if (!i) return -errno;
  int fd = openat(live_fd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct handle *h = xcalloc(1, sizeof(*h));
  h->fd = fd;
  h->id = i->id;
  h->gen = gen;
  fi->fh = (uintptr_t)h;
  return 0;
}
static int op_opendir(const char *path, struct fuse_file_info *fi) { LOCKED(do_opendir(path, fi)); }

static int op_releasedir(const char *path, struct fuse_file_info *fi) {
  return op_release(path, fi);
}

static int do_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off, struct fuse_file_info *fi, enum fuse_readdir_flags flags) {
  (void)off;
  (void)flags;
  (void)path;
  struct handle *h = fh(fi);
  if (!h || stale(h)) return -EIO;
  int fd = dup(h->fd);
  if (fd < 0) return -errno;
  DIR *dir = fdopendir(fd);
  if (!dir) {
    close(fd);
    return -errno;
  }
  rewinddir(dir);
  struct dirent *de;
  while ((de = readdir(dir)) != NULL) {
    if (filler(buf, de->d_name, NULL, 0, 0)) break;
  }
  closedir(dir);
  return 0;
}
static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off, struct fuse_file_info *fi, enum fuse_readdir_flags flags) {
  LOCKED(do_readdir(path, buf, filler, off, fi, flags));
}

static int do_mkdir(const char *path, mode_t mode) {
  if (mkdirat(live_fd, rel(path), mode) != 0) return -errno;
  struct stat st;
  if (fstatat(live_fd, rel(path), &st, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
  map_del(st.st_ino);
  struct ino *i = new_ino(1, mode);
  i->linked = 1;
  i->st_ino = st.st_ino;
  map_put(st.st_ino, i->id);
  return 0;
}
static int op_mkdir(const char *path, mode_t mode) { LOCKED(do_mkdir(path, mode)); }

static int do_rmdir(const char *path) {
  struct stat st;
  if (fstatat(live_fd, rel(path), &st, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
  if (unlinkat(live_fd, rel(path), AT_REMOVEDIR) != 0) return -errno;
  forget_if_last(&st);
  return 0;
}
static int op_rmdir(const char *path) { LOCKED(do_rmdir(path)); }

static int do_unlink(const char *path) {
  struct stat st;
  if (fstatat(live_fd, rel(path), &st, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
  if (unlinkat(live_fd, rel(path), 0) != 0) return -errno;
  forget_if_last(&st);
  return 0;
}
static int op_unlink(const char *path) { LOCKED(do_unlink(path)); }

static int do_rename(const char *from, const char *to, unsigned int flags) {
  struct stat src, dst;
  if (fstatat(live_fd, rel(from), &src, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
  int has_dst = fstatat(live_fd, rel(to), &dst, AT_SYMLINK_NOFOLLOW) == 0;
  if (syscall(SYS_renameat2, live_fd, rel(from), live_fd, rel(to), flags) != 0) return -errno;
  ino_of_stat(&src);
  if (has_dst && !(flags & RENAME_EXCHANGE) && dst.st_ino != src.st_ino) forget_if_last(&dst);
  return 0;
}
static int op_rename(const char *from, const char *to, unsigned int flags) { LOCKED(do_rename(from, to, flags)); }

static int do_link(const char *from, const char *to) {
  if (linkat(live_fd, rel(from), live_fd, rel(to), 0) != 0) return -errno;
  return 0;
}
static int op_link(const char *from, const char *to) { LOCKED(do_link(from, to)); }

static int do_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
  struct handle *h = fh(fi);
  if (stale(h)) return -EIO;
  int rc = h && h->fd >= 0 ? fchmod(h->fd, mode) : fchmodat(live_fd, rel(path), mode, 0);
  if (rc != 0) return -errno;
  struct ino *i = h ? get_ino(h->id) : ino_of_path(path, NULL);
  if (i) i->mode = mode & 07777;
  return 0;
}
static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) { LOCKED(do_chmod(path, mode, fi)); }

static int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi) {
  (void)path;
  (void)uid;
  (void)gid;
  (void)fi;
  return 0;
}

static int do_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
  struct handle *h = fh(fi);
  if (stale(h)) return -EIO;
  int rc = h && h->fd >= 0 ? futimens(h->fd, tv) : utimensat(live_fd, rel(path), tv, AT_SYMLINK_NOFOLLOW);
  return rc == 0 ? 0 : -errno;
}
static int op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) { LOCKED(do_utimens(path, tv, fi)); }

/* Size changes of a live file: quota accounting, and truncation remembered for the next sync. */
static int resize(struct ino *i, int fd, off_t size) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  if (quota >= 0 && size > st.st_size && used + (size - st.st_size) > quota) {
    enospc++;
    return -ENOSPC;
  }
  if (ftruncate(fd, size) != 0) return -errno;
  used += size - st.st_size;
  if (i) mark_truncated(i, size);
  return 0;
}

static int open_common(const char *path, struct fuse_file_info *fi, int create, mode_t mode) {
  /* O_APPEND is left out: the kernel passes the offset of every write, and the dirty range must match it. */
  int flags = fi->flags & ~(O_TRUNC | O_CREAT | O_EXCL | O_APPEND);
  /* Write-only opens are made read-write below us: a sync copies from the live file. */
  if ((flags & O_ACCMODE) == O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;
  struct stat before;
  int existed = fstatat(live_fd, rel(path), &before, AT_SYMLINK_NOFOLLOW) == 0;
  if (create && existed && (fi->flags & O_EXCL)) return -EEXIST;
  if (!existed && !create) return -ENOENT;
  int fd = openat(live_fd, rel(path), flags | (create ? O_CREAT : 0) | O_CLOEXEC, mode);
  if (fd < 0) return -errno;
  struct stat st;
  fstat(fd, &st);
  struct ino *i = map_get(st.st_ino);
  if (!i || !existed) {
    map_del(st.st_ino);
    i = new_ino(0, create ? mode : st.st_mode);
    i->linked = 1;
    i->st_ino = st.st_ino;
    map_put(st.st_ino, i->id);
    int rc = make_obj(i);
    if (rc) {
      close(fd);
      return rc;
    }
  }
  if ((fi->flags & O_TRUNC) && st.st_size > 0) {
    int rc = resize(i, fd, 0);
    if (rc) {
      close(fd);
      return rc;
    }
  }
  struct handle *h = xcalloc(1, sizeof(*h));
  h->fd = fd;
  h->id = i->id;
  h->gen = gen;
  fi->fh = (uintptr_t)h;
  return 0;
}
static int op_open(const char *path, struct fuse_file_info *fi) { LOCKED(open_common(path, fi, 0, 0)); }
static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi) { LOCKED(open_common(path, fi, 1, mode)); }

static int op_release(const char *path, struct fuse_file_info *fi) {
  (void)path;
  struct handle *h = fh(fi);
  if (h) {
    if (h->fd >= 0) close(h->fd);
    free(h);
  }
  return 0;
}

static int do_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)path;
  struct handle *h = fh(fi);
  if (!h || stale(h)) return -EIO;
  ssize_t r = pread(h->fd, buf, size, off);
  return r < 0 ? -errno : (int)r;
}
static int op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) { LOCKED(do_read(path, buf, size, off, fi)); }

static int do_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)path;
  struct handle *h = fh(fi);
  if (!h || stale(h)) return -EIO;
  struct stat st;
  if (fstat(h->fd, &st) != 0) return -errno;
  off_t end = off + (off_t)size;
  if (quota >= 0 && end > st.st_size && used + (end - st.st_size) > quota) {
    enospc++;
    return -ENOSPC;
  }
  ssize_t w = pwrite(h->fd, buf, size, off);
  if (w < 0) return -errno;
  if (off + w > st.st_size) used += off + w - st.st_size;
  struct ino *i = get_ino(h->id);
  if (i) mark_dirty(i, off, off + w);
  return (int)w;
}
static int op_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) { LOCKED(do_write(path, buf, size, off, fi)); }

static int do_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
  struct handle *h = fh(fi);
  if (stale(h)) return -EIO;
  if (h && h->fd >= 0) return resize(get_ino(h->id), h->fd, size);
  int fd = openat(live_fd, rel(path), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct stat st;
  fstat(fd, &st);
  int rc = resize(ino_of_stat(&st), fd, size);
  close(fd);
  return rc;
}
static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi) { LOCKED(do_truncate(path, size, fi)); }

static int do_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi) {
  (void)path;
  struct handle *h = fh(fi);
  if (!h || stale(h)) return -EIO;
  /* Preallocation that keeps the size is only a hint: nothing to do (RocksDB asks for it). */
  if (mode == FALLOC_FL_KEEP_SIZE) return 0;
  if (mode != 0) return -EOPNOTSUPP;
  struct stat st;
  if (fstat(h->fd, &st) != 0) return -errno;
  if (off + len <= st.st_size) return 0;
  return resize(get_ino(h->id), h->fd, off + len);
}
static int op_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi) { LOCKED(do_fallocate(path, mode, off, len, fi)); }

static int do_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)path;
  (void)datasync;
  struct handle *h = fh(fi);
  if (!h || stale(h)) return -EIO;
  syncs++;
  if (fail_sync) {
    failed_syncs++;
    return -EIO;
  }
  struct ino *i = get_ino(h->id);
  return i ? sync_file(i, h->fd) : 0;
}
static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi) { LOCKED(do_fsync(path, datasync, fi)); }

static int do_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)path;
  (void)datasync;
  struct handle *h = fh(fi);
  if (stale(h)) return -EIO;
  syncs++;
  if (fail_sync) {
    failed_syncs++;
    return -EIO;
  }
  if (!h) return -EIO;
  struct ino *d = get_ino(h->id);
  if (!d || !d->is_dir) return -ENOTDIR;
  if (!d->linked) return 0; /* a removed directory: nothing of it can be made durable */
  int rc = sync_dir(d, h->fd);
  if (rc == 0) collect_garbage();
  return rc;
}
static int op_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi) { LOCKED(do_fsyncdir(path, datasync, fi)); }

static int do_statfs(const char *path, struct statvfs *sv) {
  (void)path;
  if (fstatvfs(live_fd, sv) != 0) return -errno;
  if (quota >= 0) {
    unsigned long bs = sv->f_frsize ? sv->f_frsize : 4096;
    sv->f_blocks = (fsblkcnt_t)(quota / bs);
    long long left = quota - used;
    sv->f_bfree = sv->f_bavail = (fsblkcnt_t)(left > 0 ? left / bs : 0);
  }
  return 0;
}
static int op_statfs(const char *path, struct statvfs *sv) { LOCKED(do_statfs(path, sv)); }

/* ---- control socket ---- */

static void command(char *line, char *out, size_t outn) {
  char *nl = strpbrk(line, "\r\n");
  if (nl) *nl = 0;
  if (!strcmp(line, "ping")) {
    snprintf(out, outn, "ok pong");
  } else if (!strcmp(line, "cut")) {
    int rc = power_cut(out, outn);
    if (rc) snprintf(out, outn, "err cut failed: %s", strerror(-rc));
  } else if (!strcmp(line, "fail-sync on")) {
    fail_sync = 1;
    snprintf(out, outn, "ok fail-sync on");
  } else if (!strcmp(line, "fail-sync off")) {
    fail_sync = 0;
    snprintf(out, outn, "ok fail-sync off");
  } else if (!strcmp(line, "quota off")) {
    quota = -1;
    snprintf(out, outn, "ok quota off used=%lld", used);
  } else if (!strncmp(line, "quota ", 6)) {
    char *end;
    long long q = strtoll(line + 6, &end, 10);
    if (*end || q < 0) snprintf(out, outn, "err bad quota: %s", line + 6);
    else {
      quota = q;
      snprintf(out, outn, "ok quota %lld used=%lld", quota, used);
    }
  } else if (!strcmp(line, "usage")) {
    snprintf(out, outn, "ok used=%lld quota=%lld syncs=%llu failed_syncs=%llu enospc=%llu cuts=%llu", used, quota, syncs, failed_syncs, enospc, cuts);
  } else {
    snprintf(out, outn, "err unknown command: %s", line);
  }
}

static void *control_loop(void *arg) {
  int srv = (int)(intptr_t)arg;
  for (;;) {
    int c = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR) continue;
      return NULL;
    }
    FILE *in = fdopen(c, "r+");
    if (!in) {
      close(c);
      continue;
    }
    char line[256];
    while (fgets(line, sizeof(line), in)) {
      char out[512];
      pthread_mutex_lock(&mu);
      command(line, out, sizeof(out));
      pthread_mutex_unlock(&mu);
      fprintf(in, "%s\n", out);
      fflush(in);
    }
    fclose(in);
  }
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  (void)conn;
  /* Nothing cached in the kernel beyond an open file, so a power cut is seen at once. */
  cfg->entry_timeout = 0;
  cfg->attr_timeout = 0;
  cfg->negative_timeout = 0;
  cfg->kernel_cache = 0;
  cfg->hard_remove = 1;
  cfg->nullpath_ok = 1;
  cfg->use_ino = 0;
  int srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", ctl_path);
  unlink(ctl_path);
  if (srv < 0 || bind(srv, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(srv, 8) != 0) {
    logmsg("control socket %s: %s", ctl_path, strerror(errno));
    exit(1);
  }
  pthread_t t;
  pthread_create(&t, NULL, control_loop, (void *)(intptr_t)srv);
  pthread_detach(t);
  printf("lazyfs: ready\n");
  fflush(stdout);
  return NULL;
}

static const struct fuse_operations ops = {
    .init = op_init,
    .getattr = op_getattr,
    .access = op_access,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsyncdir,
    .mkdir = op_mkdir,
    .rmdir = op_rmdir,
    .unlink = op_unlink,
    .rename = op_rename,
    .link = op_link,
    .chmod = op_chmod,
    .chown = op_chown,
    .utimens = op_utimens,
    .open = op_open,
    .create = op_create,
    .release = op_release,
    .read = op_read,
    .write = op_write,
    .truncate = op_truncate,
    .fallocate = op_fallocate,
    .fsync = op_fsync,
    .statfs = op_statfs,
};

static int make_dir(const char *base, const char *name, char **out) {
  if (asprintf(out, "%s/%s", base, name) < 0) return -1;
  if (mkdir(*out, 0700) != 0 && errno != EEXIST) return -1;
  return open(*out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s <backing-dir> <mountpoint> <control-socket>\n", argv[0]);
    return 2;
  }
  /* Never outlive the harness that started us (SIGTERM makes libfuse unmount). */
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() == 1) return 1;
  mkdir(argv[1], 0700);
  char *dur_path;
  live_fd = make_dir(argv[1], "live", &live_path);
  dur_fd = make_dir(argv[1], "durable", &dur_path);
  if (live_fd < 0 || dur_fd < 0) {
    logmsg("backing directory %s: %s", argv[1], strerror(errno));
    return 1;
  }
  if (rm_tree_at(live_fd) != 0 || rm_tree_at(dur_fd) != 0) {
    logmsg("cannot empty the backing directory %s", argv[1]);
    return 1;
  }
  ctl_path = argv[3];
  struct ino *root = new_ino(1, 0755);
  struct stat rs;
  fstat(live_fd, &rs);
  root->linked = 1;
  root->st_ino = rs.st_ino;
  root->dd_is_set = 1;
  map_put(rs.st_ino, root->id);
  char *fargv[] = {argv[0], argv[2], "-f", "-s", "-o", "fsname=lazyfs,subtype=lazyfs", getenv("LAZYFS_DEBUG") ? "-d" : NULL, NULL};
  int rc = fuse_main(getenv("LAZYFS_DEBUG") ? 7 : 6, fargv, &ops, NULL);
  unlink(ctl_path);
  return rc;
}
