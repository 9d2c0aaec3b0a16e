/*
 * The emulator's spawn server: starts task processes for it, reaps them and reports their exits.
 *
 * Usage: spawn-server <emulator pid> <socket fd>. It dies with the emulator (PR_SET_PDEATHSIG = SIGKILL;
 * it exits 137 at once if the emulator is already gone) and every task it starts dies with it in turn.
 *
 * Requests (emulator -> server, a stream): u32 size of the rest, u32 id, u32 flags, u32 argc, u32 envc,
 * then NUL-terminated strings: working folder, stdout path, stderr path, search path (the task's PATH),
 * task folder, argv[argc], env[envc] ("NAME=value"). Flags: MAKE_FOLDERS creates the task folder, its
 * working folder and the two output files first (as layout.prepare_task_directory does); SEARCH looks
 * argv[0] up on the search path (as shutil.which does), otherwise argv[0] contains a slash and is taken
 * relative to the working folder when not absolute.
 *
 * Each request is one fork: the child makes the folders, finds the program, opens the output files, moves
 * to the working folder and its own session, sets its parent-death signal and execs the program (the one
 * exec of the task). Children start side by side; each has a close-on-exec pipe to the server that stays
 * empty if it gets as far as its exec and carries the failed stage and errno otherwise.
 *
 * Replies (server -> emulator): records of four native 32-bit integers: kind, id, a, b.
 *   STARTED id pid           the process got to its exec
 *   FAILED  id stage errno   nothing ran; stage says which step failed (errno 0 for a program not found)
 *   EXITED  id status        the process ended and was reaped (a wait status)
 *
 * A task process gets /dev/null as stdin, the two files as stdout and stderr, no other descriptor, its
 * own session and process group, the server's signal dispositions and the emulator's signal mask.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

enum { STARTED = 1, FAILED = 2, EXITED = 3 };
enum { MAKE_FOLDERS = 1, SEARCH = 2 };
enum {
    NOT_FOUND = 1,      /* the program is not there (or not on the search path) */
    NOT_EXECUTABLE = 2, /* a folder, or not executable */
    FOLDER = 3,         /* creating the task folder failed */
    WORKING = 4,        /* creating the working folder failed */
    STDOUT = 5,         /* creating or opening stdout failed */
    STDERR = 6,         /* creating or opening stderr failed */
    START = 7,          /* fork, descriptors, chdir, session, exec: as subprocess reports them */
    REQUEST = 8         /* a malformed request */
};

#define HEADER 20

struct task {
    pid_t pid;
    uint32_t id;
    int report; /* the read end of its report pipe while it starts, -1 once it runs */
};

static pid_t self;
static sigset_t original_mask;
static int devnull = -1;
static struct task *tasks;
static size_t task_count, task_capacity;
static struct pollfd *polled;
static size_t polled_capacity;
static char *out_buffer;
static size_t out_length, out_capacity;

static void *grow(void *buffer, size_t *capacity, size_t needed, size_t item) {
    if (needed <= *capacity) return buffer;
    size_t wanted = *capacity ? *capacity : 64;
    while (wanted < needed) wanted *= 2;
    void *bigger = realloc(buffer, wanted * item);
    if (bigger == NULL) _exit(70); /* out of memory: the emulator sees the socket close */
    *capacity = wanted;
    return bigger;
}

static void reply(uint32_t kind, uint32_t id, int32_t a, int32_t b) {
    int32_t record[4] = {(int32_t)kind, (int32_t)id, a, b};
    out_buffer = grow(out_buffer, &out_capacity, out_length + sizeof record, 1);
    memcpy(out_buffer + out_length, record, sizeof record);
    out_length += sizeof record;
}

static int flush(int sock) {
    size_t done = 0;
    while (done < out_length) {
        ssize_t n = send(sock, out_buffer + done, out_length - done, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            return -1;
        }
        done += (size_t)n;
    }
    memmove(out_buffer, out_buffer + done, out_length - done);
    out_length -= done;
    return 0;
}

/* ---- task folders, as layout.prepare_task_directory makes them */
static int make_parents(const char *path) {
    char buffer[4096];
    size_t length = strlen(path);
    if (length >= sizeof buffer) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buffer, path, length + 1);
    for (char *slash = buffer + 1; *slash; slash++) {
        if (*slash != '/') continue;
        *slash = '\0';
        if (mkdir(buffer, 0777) != 0 && errno != EEXIST) return -1;
        *slash = '/';
    }
    if (mkdir(buffer, 0777) != 0) {
        struct stat info;
        if (errno != EEXIST || stat(buffer, &info) != 0 || !S_ISDIR(info.st_mode)) return -1;
    }
    return 0;
}

static int create_file(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

static int touch(const char *path) {
    if (utimensat(AT_FDCWD, path, NULL, 0) == 0) return 0;
    return create_file(path);
}

static int make_folders(const char *folder, const char *cwd, const char *out, const char *err) {
    if (mkdir(folder, 0777) != 0) {
        if (errno == EEXIST) { /* a rerun: the files stay (the process truncates them) */
            if (make_parents(cwd) != 0) return WORKING;
            if (touch(out) != 0) return STDOUT;
            if (touch(err) != 0) return STDERR;
            return 0;
        }
        if (errno != ENOENT || make_parents(folder) != 0) return FOLDER;
    }
    if (mkdir(cwd, 0777) != 0) return WORKING;
    if (create_file(out) != 0) return STDOUT;
    if (create_file(err) != 0) return STDERR;
    return 0;
}

/* ---- the program, looked up as shutil.which and runner.resolve_program do */
static int runnable(const char *path) {
    struct stat info;
    return stat(path, &info) == 0 && access(path, X_OK) == 0 && !S_ISDIR(info.st_mode);
}

static int resolve(int flags, const char *program, const char *search, const char *cwd, char *found,
                   size_t size) {
    if (!(flags & SEARCH)) {
        if (program[0] == '/') {
            if (strlen(program) >= size) return NOT_FOUND;
            strcpy(found, program);
        } else if ((size_t)snprintf(found, size, "%s/%s", cwd, program) >= size) {
            return NOT_FOUND;
        }
        struct stat info;
        if (stat(found, &info) != 0) return NOT_FOUND;
        if (S_ISDIR(info.st_mode) || access(found, X_OK) != 0) return NOT_EXECUTABLE;
        return 0;
    }
    if (search[0] == '\0') return NOT_FOUND;
    const char *entry = search;
    for (;;) {
        const char *end = strchr(entry, ':');
        size_t length = end ? (size_t)(end - entry) : strlen(entry);
        int n;
        if (length == 0) /* os.path.join("", name) is name */
            n = snprintf(found, size, "%s", program);
        else if (entry[length - 1] == '/')
            n = snprintf(found, size, "%.*s%s", (int)length, entry, program);
        else
            n = snprintf(found, size, "%.*s/%s", (int)length, entry, program);
        if (n >= 0 && (size_t)n < size && runnable(found)) return 0;
        if (!end) return NOT_FOUND;
        entry = end + 1;
    }
}

/* ---- the task process, between fork and exec: its folders, its program, its files, then exec */
static void child(int report, uint32_t flags, char **strings, uint32_t argc) {
    const char *cwd = strings[0], *out_path = strings[1], *err_path = strings[2];
    const char *search = strings[3], *folder = strings[4];
    char **argv = strings + 5;
    char **envp = argv + argc + 1;
    char program[4096];
    int stage = 0, out, err;
    errno = 0;
    if ((flags & MAKE_FOLDERS) && (stage = make_folders(folder, cwd, out_path, err_path)) != 0) goto fail;
    if ((stage = resolve(flags, argv[0], search, cwd, program, sizeof program)) != 0) {
        errno = 0;
        goto fail;
    }
    stage = STDOUT;
    if ((out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) < 0) goto fail;
    stage = STDERR;
    if ((err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) < 0) goto fail;
    stage = START;
    if (dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) goto fail;
    if (chdir(cwd) != 0 || setsid() < 0) goto fail;
    /* From here on as the exec launcher did (launcher.py), once subprocess had started it: a failure is the
     * process's exit code 127, 137 if the server died before prctl took effect. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) _exit(127);
    if (getppid() != self) _exit(137);
    sigprocmask(SIG_SETMASK, &original_mask, NULL);
    argv[0] = program; /* the command's argv[0] is the program's path, as exec'd by the launcher */
    execve(program, argv, envp);
    _exit(127);
fail:;
    int32_t record[2] = {stage, errno};
    ssize_t written = write(report, record, sizeof record);
    (void)written;
    _exit(127);
}

static void spawn(uint32_t id, uint32_t flags, char **strings, uint32_t argc) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        reply(FAILED, id, START, errno);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        child(fds[1], flags, strings, argc);
    }
    int fork_error = errno;
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        reply(FAILED, id, START, fork_error);
        return;
    }
    tasks = grow(tasks, &task_capacity, task_count + 1, sizeof *tasks);
    tasks[task_count].pid = pid;
    tasks[task_count].id = id;
    tasks[task_count].report = fds[0];
    task_count++;
}

static void forget(size_t index) {
    tasks[index] = tasks[--task_count];
}

/* A starting task whose report pipe closed (or whose process ended): FAILED with what its process wrote
 * before it exited (then it is reaped and forgotten: 1), or STARTED (it exec'd: 0). */
static int settle(size_t index, int reaped) {
    int32_t record[2];
    ssize_t n = read(tasks[index].report, record, sizeof record);
    close(tasks[index].report);
    tasks[index].report = -1;
    if (n != (ssize_t)sizeof record) {
        reply(STARTED, tasks[index].id, tasks[index].pid, 0);
        return 0;
    }
    if (!reaped) waitpid(tasks[index].pid, NULL, 0); /* it exits right after its report */
    reply(FAILED, tasks[index].id, record[0], record[1]);
    forget(index);
    return 1;
}

static void reap(void) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < task_count; i++) {
            if (tasks[i].pid != pid) continue;
            if (tasks[i].report >= 0 && settle(i, 1)) break;
            reply(EXITED, tasks[i].id, status, 0);
            forget(i);
            break;
        }
    }
}

/* One request from buffer (length bytes after the size word); 0 when malformed. */
static int handle(char *body, size_t length) {
    if (length < HEADER - 4) return 0;
    uint32_t header[4];
    memcpy(header, body, sizeof header);
    uint32_t id = header[0], flags = header[1], argc = header[2], envc = header[3];
    if (argc == 0 || argc > length || envc > length) return 0;
    size_t count = 5 + (size_t)argc + 1 + (size_t)envc + 1;
    char **strings = calloc(count, sizeof *strings);
    if (strings == NULL) _exit(70);
    char *cursor = body + sizeof header, *end = body + length;
    size_t wanted = 5 + (size_t)argc + (size_t)envc, index = 0;
    for (size_t n = 0; n < wanted; n++) {
        char *zero = memchr(cursor, '\0', (size_t)(end - cursor));
        if (zero == NULL) {
            free(strings);
            return 0;
        }
        strings[index++] = cursor;
        if (n == 4 + argc) strings[index++] = NULL; /* argv's end */
        cursor = zero + 1;
    }
    strings[index] = NULL; /* env's end */
    if (argc == 0 || cursor != end) {
        free(strings);
        return 0;
    }
    spawn(id, flags, strings, argc);
    free(strings);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) return 127;
    pid_t parent = (pid_t)strtol(argv[1], NULL, 10);
    int sock = (int)strtol(argv[2], NULL, 10);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return 127;
    if (getppid() != parent) _exit(137); /* the emulator died before prctl took effect */
    self = getpid();
    if (fcntl(sock, F_SETFD, FD_CLOEXEC) != 0) return 127;
    if (fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK) != 0) return 127;
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) return 127;
    sigset_t children;
    sigemptyset(&children);
    sigaddset(&children, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &children, &original_mask) != 0) return 127;
    int signals = signalfd(-1, &children, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signals < 0) return 127;

    char *in = NULL;
    size_t in_length = 0, in_capacity = 0;
    for (;;) {
        polled = grow(polled, &polled_capacity, 2 + task_count, sizeof *polled);
        struct pollfd *fds = polled;
        fds[0] = (struct pollfd){sock, (short)(POLLIN | (out_length ? POLLOUT : 0)), 0};
        fds[1] = (struct pollfd){signals, POLLIN, 0};
        size_t count = 2;
        for (size_t i = 0; i < task_count; i++)
            if (tasks[i].report >= 0) fds[count++] = (struct pollfd){tasks[i].report, POLLIN, 0};
        if (poll(fds, count, -1) < 0) {
            if (errno == EINTR) continue;
            return 71;
        }
        for (size_t k = 2; k < count; k++) {
            if (!fds[k].revents) continue;
            for (size_t i = 0; i < task_count; i++) {
                if (tasks[i].report != fds[k].fd) continue;
                settle(i, 0);
                break;
            }
        }
        if (fds[1].revents & POLLIN) {
            struct signalfd_siginfo info[16];
            while (read(signals, info, sizeof info) > 0) {
            }
            reap();
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            for (;;) {
                in = grow(in, &in_capacity, in_length + 65536, 1);
                ssize_t n = read(sock, in + in_length, in_capacity - in_length);
                if (n == 0) return 0; /* the emulator closed its end: the tasks die with the server */
                if (n < 0) {
                    if (errno == EINTR) continue;
                    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                    return 72;
                }
                in_length += (size_t)n;
            }
            size_t used = 0;
            while (in_length - used >= 4) {
                uint32_t size;
                memcpy(&size, in + used, 4);
                if (in_length - used - 4 < size) {
                    in = grow(in, &in_capacity, (size_t)size + 4, 1);
                    break;
                }
                if (!handle(in + used + 4, size)) {
                    uint32_t id = 0;
                    if (size >= 4) memcpy(&id, in + used + 4, 4);
                    reply(FAILED, id, REQUEST, EINVAL);
                }
                used += 4 + (size_t)size;
            }
            memmove(in, in + used, in_length - used);
            in_length -= used;
        }
        if (flush(sock) != 0) return 73;
    }
}
