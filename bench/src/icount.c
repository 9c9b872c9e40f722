// A QEMU TCG plugin (API version 1, QEMU 7.x user mode) counting the guest instructions a program
// executes: every translated block adds its instruction count each time it runs. The running total
// is written to the file given as `out=FILE` every 20 ms (and at exit), so a driver can read it
// before and after a load. Counts are exact for the guest code (the kernel's share is not included),
// whatever else runs on the machine.
//
//   gcc -O2 -shared -fPIC -fvisibility=hidden -o icount.so icount.c -lpthread
//   qemu-x86_64 -plugin ./icount.so,out=/tmp/count PROGRAM ARGS...
//
// Debian ships QEMU without the plugin header, so the few API entry points used are declared here.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
typedef struct qemu_info_t qemu_info_t;
typedef void (*translated_callback)(qemu_plugin_id_t id, struct qemu_plugin_tb *block);
typedef void (*executed_callback)(unsigned int vcpu_index, void *userdata);
typedef void (*exit_callback)(qemu_plugin_id_t id, void *userdata);

extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, translated_callback callback);
extern void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *block, executed_callback callback, int flags, void *userdata);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *block);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, exit_callback callback, void *userdata);

enum { callback_uses_no_registers = 0 };

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t executed_total;
static char output_path[4096];

static void block_executed(unsigned int vcpu_index, void *instructions) {
    __atomic_fetch_add(&executed_total, (uint64_t)(uintptr_t)instructions, __ATOMIC_RELAXED);
}

static void block_translated(qemu_plugin_id_t id, struct qemu_plugin_tb *block) {
    void *instructions = (void *)(uintptr_t)qemu_plugin_tb_n_insns(block);
    qemu_plugin_register_vcpu_tb_exec_cb(block, block_executed, callback_uses_no_registers, instructions);
}

static void publish_total(void) {
    char temporary[sizeof output_path + 8];
    snprintf(temporary, sizeof temporary, "%s.tmp", output_path);
    FILE *file = fopen(temporary, "w");
    if (file == NULL) return;
    fprintf(file, "%llu\n", (unsigned long long)__atomic_load_n(&executed_total, __ATOMIC_RELAXED));
    fclose(file);
    rename(temporary, output_path);
}

static void *publish_periodically(void *unused) {
    const struct timespec period = {0, 20 * 1000 * 1000};
    for (;;) {
        publish_total();
        nanosleep(&period, NULL);
    }
    return NULL;
}

static void program_exited(qemu_plugin_id_t id, void *unused) { publish_total(); }

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) snprintf(output_path, sizeof output_path, "%s", argv[i] + 4);
    }
    if (output_path[0] == '\0') {
        fprintf(stderr, "icount: pass out=FILE\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, block_translated);
    qemu_plugin_register_atexit_cb(id, program_exited, NULL);
    pthread_t publisher;
    if (pthread_create(&publisher, NULL, publish_periodically, NULL) != 0) return -1;
    pthread_detach(publisher);
    return 0;
}
