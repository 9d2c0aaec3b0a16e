/* The floor of a task run with Batch's folders, for bench/emulator_tasks.py: runs COUNT copies of PROGRAM,
 * SLOTS at a time (as xargs -P does), each child doing what the emulator's spawn server does between fork and
 * exec (batchrun/emulator/node/spawn_server.c, child()): it makes ROOT/tNNNNN, its wd/ and empty stdout.txt and
 * stderr.txt (the four inodes a Batch node makes for every task), looks the program up on PATH, opens the two
 * files again for its output, takes /dev/null as input, its own session and a parent-death signal, and execs
 * once. What it leaves out is the server's side: the request, the report of the start and of the exit.
 *
 * Usage: folders_floor ROOT COUNT SLOTS PROGRAM [ARG...]; exits 1 when any run failed, 2 on bad arguments. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *what, const char *path) {
    perror(path);
    fprintf(stderr, "folders_floor: %s failed\n", what);
    return 3;
}

static int create_file(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    return fd < 0 ? -1 : close(fd);
}

static int child(const char *root, int index, char **argv) {
    char folder[4096], wd[4200], out_path[4200], err_path[4200];
    snprintf(folder, sizeof folder, "%s/t%05d", root, index);
    snprintf(wd, sizeof wd, "%s/wd", folder);
    snprintf(out_path, sizeof out_path, "%s/stdout.txt", folder);
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", folder);
    if (mkdir(folder, 0777) != 0) return fail("mkdir", folder);
    if (mkdir(wd, 0777) != 0) return fail("mkdir", wd);
    if (create_file(out_path) != 0) return fail("create", out_path);
    if (create_file(err_path) != 0) return fail("create", err_path);
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (in < 0 || out < 0 || err < 0) return fail("open", folder);
    if (chdir(wd) != 0) return fail("chdir", wd);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 || setsid() < 0) return 3;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return 3;
    execvp(argv[0], argv); /* PATH searched, as the spawn server and xargs do */
    return 127;
}

int main(int argc, char **argv) {
    int count = argc >= 5 ? atoi(argv[2]) : 0, slots = argc >= 5 ? atoi(argv[3]) : 0;
    if (count < 1 || slots < 1) {
        fprintf(stderr, "usage: %s ROOT COUNT SLOTS PROGRAM [ARG...] (COUNT and SLOTS at least 1)\n", argv[0]);
        return 2;
    }
    int running = 0, failed = 0, status;
    for (int index = 0; index < count; index++) {
        if (running == slots) {
            if (wait(&status) > 0) failed |= status != 0;
            running--;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            failed = 1;
            break;
        }
        if (pid == 0) _exit(child(argv[1], index, argv + 4));
        running++;
    }
    for (; running > 0; running--)
        if (wait(&status) > 0) failed |= status != 0;
    return failed ? 1 : 0;
}
