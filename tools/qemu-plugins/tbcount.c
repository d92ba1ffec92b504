// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tbcount: a QEMU TCG plugin that counts the guest instructions executed
 * per translation block, for instruction profiles of a whole guest
 * (make profile, docs/flexsc-bench.md).
 *
 * Every block QEMU translates gets an inline counter of its executions,
 * kept per (guest virtual address, instructions in the block); at exit the
 * plugin writes one line per block that ran:
 *
 *     VADDR INSNS EXECUTIONS
 *
 * (hexadecimal address, decimal counts) into the file named by its
 * argument out=PATH (default tbcount.txt). VADDR x INSNS x EXECUTIONS
 * summed over the blocks of a function is the number of instructions the
 * guest executed in it; user-space addresses are per process, so the host
 * names them with the process's mappings.
 *
 * The plugin API is QEMU's stable C interface (docs/devel/tcg-plugins in
 * QEMU); Debian 12's QEMU 7.2 implements its version 1 and ships no
 * header for it, so the few functions used here are declared below as
 * that API defines them.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
	void (*cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb));
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb,
	enum qemu_plugin_op op, void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id,
	void (*cb)(qemu_plugin_id_t id, void *userdata), void *userdata);

#define EXPORT __attribute__((visibility("default")))

EXPORT int qemu_plugin_version = 1;

struct block {
	uint64_t vaddr;
	uint64_t insns;
	uint64_t executions;	/* added to by the translated code */
};

static GHashTable *blocks;	/* key: vaddr ^ insns << 48 */
static GMutex lock;
static char out_path[4096] = "tbcount.txt";

static void translated(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	uint64_t vaddr = qemu_plugin_tb_vaddr(tb);
	uint64_t insns = qemu_plugin_tb_n_insns(tb);
	uint64_t key = vaddr ^ insns << 48;
	struct block *b;

	/* A block translated again (after a flush) keeps its counter. */
	g_mutex_lock(&lock);
	b = g_hash_table_lookup(blocks, &key);
	if (!b) {
		uint64_t *k = g_new(uint64_t, 1);

		*k = key;
		b = g_new0(struct block, 1);
		b->vaddr = vaddr;
		b->insns = insns;
		g_hash_table_insert(blocks, k, b);
	}
	g_mutex_unlock(&lock);
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64,
						 &b->executions, 1);
}

static void write_counts(qemu_plugin_id_t id, void *userdata)
{
	GHashTableIter it;
	gpointer key, value;
	FILE *f = fopen(out_path, "w");

	if (!f) {
		perror(out_path);
		return;
	}
	g_hash_table_iter_init(&it, blocks);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		const struct block *b = value;

		if (b->executions)
			fprintf(f, "%llx %llu %llu\n", (unsigned long long)b->vaddr,
				(unsigned long long)b->insns,
				(unsigned long long)b->executions);
	}
	if (fclose(f))
		perror(out_path);
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t *info,
			       int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (strncmp(argv[i], "out=", 4)) {
			fprintf(stderr, "tbcount: unknown argument '%s' (out=PATH)\n", argv[i]);
			return -1;
		}
		g_strlcpy(out_path, argv[i] + 4, sizeof(out_path));
	}
	blocks = g_hash_table_new(g_int64_hash, g_int64_equal);
	qemu_plugin_register_vcpu_tb_trans_cb(id, translated);
	qemu_plugin_register_atexit_cb(id, write_counts, NULL);
	return 0;
}
