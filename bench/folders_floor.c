/* The floor of a task run with Batch's folders, for bench/emulator_tasks.py: runs COUNT copies of PROGRAM,
 * SLOTS at a time (as xargs -P does), each child first making ROOT/tNNNNN, its wd/, stdout.txt and stderr.txt
 * (the four inodes a Batch node makes for every task), its output going to those files and its working folder
 * wd/, then one exec: what the emulator's spawn server does between fork and exec, without the emulator.
 *
 * Usage: folders_floor ROOT COUNT SLOTS PROGRAM [ARG...]; exits 1 when any run failed. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void child(const char *root, int index, char **argv) {
    char folder[4096], path[4200];
    snprintf(folder, sizeof folder, "%s/t%05d", root, index);
    if (mkdir(folder, 0777) != 0) _exit(3);
    snprintf(path, sizeof path, "%s/wd", folder);
    if (mkdir(path, 0777) != 0) _exit(3);
    snprintf(path, sizeof path, "%s/stdout.txt", folder);
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    snprintf(path, sizeof path, "%s/stderr.txt", folder);
    int err = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(3);
    snprintf(path, sizeof path, "%s/wd", folder);
    if (chdir(path) != 0) _exit(3);
    execvp(argv[0], argv); /* PATH searched, as xargs does */
    _exit(127);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s ROOT COUNT SLOTS PROGRAM [ARG...]\n", argv[0]);
        return 2;
    }
    const char *root = argv[1];
    int count = atoi(argv[2]), slots = atoi(argv[3]), running = 0, failed = 0, status;
    for (int index = 0; index < count; index++) {
        if (running == slots) {
            if (wait(&status) > 0) failed |= status != 0;
            running--;
        }
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid == 0) child(root, index, argv + 4);
        running++;
    }
    for (; running > 0; running--)
        if (wait(&status) > 0) failed |= status != 0;
    return failed ? 1 : 0;
}
