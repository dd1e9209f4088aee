/* SPDX-License-Identifier: MIT */
/*
 * app/cmd_img.c - `vivarium img create|info|check|convert|rebase|commit`:
 * disk image tools taking qemu-img's arguments and printing its output
 * shapes, so scripts written for one work with the other.
 *
 * Differences from qemu-img: create and convert never overwrite an existing
 * file (as VirtualBox's VBoxManage does); convert writes to a temporary name
 * beside DST and renames it into place, so a failure or Ctrl-C leaves no
 * partial image.  check never repairs.
 *
 * Exit status: 0 done; 1 failed (one line on stderr says why); 2 bad
 * arguments.  check: 0 clean, 1 check could not complete, 2 corruptions,
 * 3 leaked clusters only (qemu-img's codes).  convert is in img_convert.c,
 * rebase and commit in img_chain.c.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-glib/json-glib.h>

#include "block/block.h"
#include "commands.h"
#include "img.h"
#include "options.h"

#define CHECK_CORRUPT	2
#define CHECK_LEAKS	3

void img_usage(FILE *f)
{
	fprintf(f,
		"usage: vivarium img COMMAND [ARGS...]   (arguments as qemu-img's)\n\n"
		"  create -f raw|qcow2 [-b BACKING [-F FMT]] [-o cluster_size=N,compat=0.10|1.1]\n"
		"         [-q] PATH [SIZE]\n"
		"  info [-f FMT] [--output human|json] PATH\n"
		"  check [-f FMT] [--output human|json] [-U] PATH\n"
		"  convert [-f FMT] [-O raw|qcow2] [-o OPTIONS] [-p] [-q] [-U] SRC DST\n"
		"  rebase [-f FMT] [-u] -b BACKING [-F FMT] PATH   (-b \"\": no backing file)\n"
		"  commit [-f FMT] [-d] [-q] PATH\n\n"
		"SIZE takes K, M, G, T suffixes (powers of 1024); without SIZE a backing\n"
		"file's size is used.  create and convert never overwrite an existing file.\n"
		"check exits 0 clean, 2 corruptions, 3 leaked clusters only, 1 if it could\n"
		"not complete.  rebase without -u copies in what the old backing chain\n"
		"gave and the new one would not; commit writes PATH into its backing\n"
		"file and then empties PATH (-d: keeps it).\n");
}

/* Report a block-layer failure: its own line if it wrote one, else errno. */
void img_fail(const char *cmd, const char *path, int ret, const char *err)
{
	if (!err || !err[0])
		fprintf(stderr, "vivarium img %s: '%s': %s\n", cmd, path, strerror(-ret));
	else if (!strstr(err, path))	/* say which file */
		fprintf(stderr, "vivarium img %s: '%s': %s\n", cmd, path, err);
	else
		fprintf(stderr, "vivarium img %s: %s\n", cmd, err);
}

/* getopt's '?' and ':' returns, as one line naming the option. */
int img_bad_option(const char *cmd, int opt, char **argv)
{
	const char *what = argv[optind - 1];

	if (opt == ':')
		fprintf(stderr, "vivarium img %s: option '%s' needs a value "
			"(see 'vivarium img --help')\n", cmd, what);
	else if (optopt)
		fprintf(stderr, "vivarium img %s: unknown option '-%c' "
			"(see 'vivarium img --help')\n", cmd, optopt);
	else
		fprintf(stderr, "vivarium img %s: unknown option '%s' "
			"(see 'vivarium img --help')\n", cmd, what);
	return EXIT_USAGE;
}

int img_parse_format(const char *cmd, const char *name,
			    enum blk_format *out)
{
	if (blk_parse_format(name, out) < 0) {
		fprintf(stderr, "vivarium img %s: unknown image format '%s' "
			"(use raw or qcow2)\n", cmd, name);
		return -1;
	}
	return 0;
}

/* --output human|json */
static int parse_output_arg(const char *cmd, const char *name, bool *json)
{
	if (!strcmp(name, "json"))
		*json = true;
	else if (!strcmp(name, "human"))
		*json = false;
	else {
		fprintf(stderr, "vivarium img %s: --output '%s': use human or json\n",
			cmd, name);
		return -1;
	}
	return 0;
}

/* Exactly @n positional arguments left, else a usage line. */
int img_want_args(const char *cmd, int argc, char **argv, int min, int max,
		     const char *what)
{
	int left = argc - optind;

	if (left < min) {
		fprintf(stderr, "vivarium img %s: give %s (see 'vivarium img --help')\n",
			cmd, what);
		return -1;
	}
	if (left > max) {
		fprintf(stderr, "vivarium img %s: unexpected argument '%s'\n",
			cmd, argv[optind + max]);
		return -1;
	}
	return 0;
}

bool img_path_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 || errno != ENOENT;
}

void img_refuse_existing(const char *cmd, const char *path)
{
	fprintf(stderr, "vivarium img %s: '%s' already exists; vivarium never "
		"overwrites an image (remove it or choose another name)\n", cmd, path);
}

/* ---- -o OPTIONS (create, convert) ------------------------------------- */

/*
 * Parse "cluster_size=64k,compat=1.1,backing_file=B,backing_fmt=F" into
 * @co (in place in @opts).  Returns 0 or -1 after printing one line.
 */
int img_parse_create_options(const char *cmd, char *opts,
				struct blk_create_opts *co, bool allow_backing)
{
	char *save = NULL;

	for (char *kv = strtok_r(opts, ",", &save); kv;
	     kv = strtok_r(NULL, ",", &save)) {
		char *val = strchr(kv, '=');

		if (!val) {
			fprintf(stderr, "vivarium img %s: -o '%s': write NAME=VALUE\n",
				cmd, kv);
			return -1;
		}
		*val++ = 0;
		if (!strcmp(kv, "cluster_size")) {
			uint64_t cs;

			if (parse_size(val, &cs) < 0 || cs < 512 || cs > (2u << 20) ||
			    (cs & (cs - 1))) {
				fprintf(stderr, "vivarium img %s: cluster_size '%s': give a "
					"power of two from 512 to 2M\n", cmd, val);
				return -1;
			}
			co->cluster_bits = (unsigned)__builtin_ctzll(cs);
		} else if (!strcmp(kv, "compat")) {
			if (!strcmp(val, "0.10") || !strcmp(val, "v2"))
				co->compat = 2;
			else if (!strcmp(val, "1.1") || !strcmp(val, "v3"))
				co->compat = 3;
			else {
				fprintf(stderr, "vivarium img %s: compat '%s': use 0.10 "
					"or 1.1\n", cmd, val);
				return -1;
			}
		} else if (allow_backing && !strcmp(kv, "backing_file")) {
			co->backing = val;
		} else if (allow_backing && !strcmp(kv, "backing_fmt")) {
			if (img_parse_format(cmd, val, &co->backing_format) < 0)
				return -1;
		} else {
			fprintf(stderr, "vivarium img %s: unknown -o option '%s' (known: "
				"cluster_size, compat%s)\n", cmd, kv,
				allow_backing ? ", backing_file, backing_fmt" : "");
			return -1;
		}
	}
	return 0;
}

/* qcow2-only settings asked of another format. */
int img_check_create_format(const char *cmd, const struct blk_create_opts *co)
{
	if (co->format == BLK_FMT_QCOW2)
		return 0;
	if (co->cluster_bits || co->compat) {
		fprintf(stderr, "vivarium img %s: cluster_size and compat apply to "
			"qcow2 only (add -%s qcow2)\n", cmd,
			strcmp(cmd, "convert") ? "f" : "O");
		return -1;
	}
	if (co->backing) {
		fprintf(stderr, "vivarium img %s: only qcow2 images have a backing "
			"file (add -f qcow2)\n", cmd);
		return -1;
	}
	return 0;
}

/* ---- create ------------------------------------------------------------ */

static int img_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct blk_create_opts co = { .format = BLK_FMT_RAW };
	const char *path;
	char err[512] = "";
	bool quiet = false;
	int opt, ret;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":f:b:F:o:qh", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			if (img_parse_format("create", optarg, &co.format) < 0)
				return EXIT_USAGE;
			break;
		case 'b': co.backing = optarg; break;
		case 'F':
			if (img_parse_format("create", optarg, &co.backing_format) < 0)
				return EXIT_USAGE;
			break;
		case 'o':
			if (img_parse_create_options("create", optarg, &co, true) < 0)
				return EXIT_USAGE;
			break;
		case 'q': quiet = true; break;
		case 'h': img_usage(stdout); return 0;
		default: return img_bad_option("create", opt, argv);
		}
	}
	if (img_want_args("create", argc, argv, 1, 2, "the image's PATH and SIZE") < 0)
		return EXIT_USAGE;
	if (img_check_create_format("create", &co) < 0)
		return EXIT_USAGE;
	path = argv[optind];
	if (optind + 1 < argc) {
		ret = parse_size(argv[optind + 1], &co.size);
		if (ret < 0 || co.size == 0) {
			fprintf(stderr, "vivarium img create: size '%s' is not a size "
				"(examples: 512M, 20G)\n", argv[optind + 1]);
			return EXIT_USAGE;
		}
		/* qemu-img rounds up to whole 512-byte sectors too. */
		if (co.size > UINT64_MAX - 511) {
			fprintf(stderr, "vivarium img create: size '%s' is too large\n",
				argv[optind + 1]);
			return EXIT_USAGE;
		}
		co.size = (co.size + 511) & ~511ull;
	} else if (!co.backing) {
		fprintf(stderr, "vivarium img create: give the image's SIZE (e.g. 20G), "
			"or a backing file with -b\n");
		return EXIT_USAGE;
	}
	if (img_path_exists(path)) {
		img_refuse_existing("create", path);
		return EXIT_FAIL;
	}

	ret = blk_create(path, &co, err, sizeof(err));
	if (ret == -EEXIST && !err[0]) {
		img_refuse_existing("create", path);
		return EXIT_FAIL;
	}
	if (ret < 0) {
		img_fail("create", path, ret, err);
		return EXIT_FAIL;
	}
	if (!quiet) {
		printf("Formatting '%s', fmt=%s", path, blk_format_name(co.format));
		if (co.format == BLK_FMT_QCOW2)
			printf(" cluster_size=%u compat=%s", 1u << (co.cluster_bits ? co.cluster_bits : 16),
			       co.compat == 2 ? "0.10" : "1.1");
		if (co.backing)
			printf(" backing_file=%s backing_fmt=%s", co.backing,
			       blk_format_name(co.backing_format));
		if (co.size)
			printf(" size=%" PRIu64, co.size);
		printf("\n");
	}
	return 0;
}

/* ---- info -------------------------------------------------------------- */

/* A size as qemu-img prints it: three significant digits, "1.32 MiB". */
static void human_size(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double d = (double)v;
	unsigned i = 0;

	/* Switch unit once the value reaches 1000 of the current one. */
	while (i + 1 < sizeof(units) / sizeof(units[0]) && d >= 1000.0) {
		d /= 1024.0;
		i++;
	}
	snprintf(buf, len, "%0.3g %s", d, units[i]);
}

/* The backing file as qemu resolves it: relative to the image's folder. */
static char *full_backing_name(const char *image, const char *backing)
{
	const char *slash = strrchr(image, '/');

	if (backing[0] == '/' || !slash)
		return g_strdup(backing);
	return g_strdup_printf("%.*s%s", (int)(slash - image + 1), image, backing);
}

static const char *compat_name(unsigned version)
{
	return version == 2 ? "0.10" : "1.1";
}

/* Pretty-print @node as qemu-img does ("key": value, 4-space indent), so
 * scripts that grep its output work on ours; scalars via json-glib. */
static void print_node(JsonNode *node, int depth)
{
	if (JSON_NODE_HOLDS_OBJECT(node)) {
		JsonObject *obj = json_node_get_object(node);
		GList *members = json_object_get_members(obj);

		printf("{");
		for (GList *m = members; m; m = m->next) {
			JsonNode *key = json_node_init_string(json_node_alloc(), m->data);
			gchar *k = json_to_string(key, FALSE);

			printf("%s\n%*s%s: ", m == members ? "" : ",", 4 * (depth + 1), "", k);
			print_node(json_object_get_member(obj, m->data), depth + 1);
			g_free(k);
			json_node_unref(key);
		}
		printf("\n%*s}", 4 * depth, "");
		g_list_free(members);
	} else {
		gchar *text = json_to_string(node, FALSE);

		printf("%s", text);
		g_free(text);
	}
}

static void print_json(JsonBuilder *jb)
{
	JsonNode *root = json_builder_get_root(jb);

	print_node(root, 0);
	printf("\n");
	json_node_unref(root);
}

static void add_int(JsonBuilder *jb, const char *key, uint64_t v)
{
	json_builder_set_member_name(jb, key);
	json_builder_add_int_value(jb, (gint64)v);
}

static void add_str(JsonBuilder *jb, const char *key, const char *v)
{
	json_builder_set_member_name(jb, key);
	json_builder_add_string_value(jb, v);
}

static void add_bool(JsonBuilder *jb, const char *key, bool v)
{
	json_builder_set_member_name(jb, key);
	json_builder_add_boolean_value(jb, v);
}

static void info_json(const char *path, const struct blk_info *in)
{
	JsonBuilder *jb = json_builder_new();
	bool qcow2 = in->format == BLK_FMT_QCOW2;

	json_builder_begin_object(jb);
	add_int(jb, "virtual-size", in->virtual_size);
	add_str(jb, "filename", path);
	if (qcow2)
		add_int(jb, "cluster-size", in->cluster_size);
	add_str(jb, "format", blk_format_name(in->format));
	add_int(jb, "actual-size", in->actual_size);
	if (qcow2) {
		json_builder_set_member_name(jb, "format-specific");
		json_builder_begin_object(jb);
		add_str(jb, "type", "qcow2");
		json_builder_set_member_name(jb, "data");
		json_builder_begin_object(jb);
		add_str(jb, "compat", compat_name(in->version));
		add_str(jb, "compression-type", in->compressed_zstd ? "zstd" : "zlib");
		if (in->version >= 3)
			add_bool(jb, "lazy-refcounts", in->lazy_refcounts);
		add_int(jb, "refcount-bits", in->refcount_bits);
		if (in->version >= 3) {
			add_bool(jb, "corrupt", in->corrupt);
			add_bool(jb, "extended-l2", false);
		}
		json_builder_end_object(jb);
		json_builder_end_object(jb);
	}
	if (in->backing[0]) {
		char *full = full_backing_name(path, in->backing);

		add_str(jb, "backing-filename", in->backing);
		add_str(jb, "full-backing-filename", full);
		if (in->backing_format != BLK_FMT_AUTO)
			add_str(jb, "backing-filename-format",
				blk_format_name(in->backing_format));
		g_free(full);
	}
	add_bool(jb, "dirty-flag", in->dirty);
	json_builder_end_object(jb);
	print_json(jb);
	g_object_unref(jb);
}

static void info_human(const char *path, const struct blk_info *in)
{
	char size[32];

	printf("image: %s\n", path);
	printf("file format: %s\n", blk_format_name(in->format));
	human_size(in->virtual_size, size, sizeof(size));
	printf("virtual size: %s (%" PRIu64 " bytes)\n", size, in->virtual_size);
	human_size(in->actual_size, size, sizeof(size));
	printf("disk size: %s\n", size);
	if (in->format != BLK_FMT_QCOW2)
		return;
	printf("cluster_size: %" PRIu64 "\n", in->cluster_size);
	if (in->backing[0]) {
		char *full = full_backing_name(path, in->backing);

		printf("backing file: %s", in->backing);
		if (strcmp(full, in->backing))
			printf(" (actual path: %s)", full);
		printf("\n");
		g_free(full);
		if (in->backing_format != BLK_FMT_AUTO)
			printf("backing file format: %s\n",
			       blk_format_name(in->backing_format));
	}
	if (in->dirty)
		printf("cleanly shut down: no\n");
	printf("Format specific information:\n");
	printf("    compat: %s\n", compat_name(in->version));
	printf("    compression type: %s\n", in->compressed_zstd ? "zstd" : "zlib");
	if (in->version >= 3)
		printf("    lazy refcounts: %s\n", in->lazy_refcounts ? "true" : "false");
	printf("    refcount bits: %u\n", in->refcount_bits);
	if (in->version >= 3) {
		printf("    corrupt: %s\n", in->corrupt ? "true" : "false");
		printf("    extended l2: false\n");
	}
}

static int img_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'O' },
		{ "force-share", no_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	/* No lock: info must work on an image a running VM holds, ours or
	 * QEMU's (as `qemu-img info -U`; without -U qemu-img refuses a qcow2
	 * that a writer holds, block.h "Image locks"); no backing file: nor
	 * should a missing one stop it (qemu-img info neither). */
	struct blk_open_opts oo = { .readonly = true, .no_lock = true,
				    .no_backing = true };
	struct blk_info in;
	struct blk *b;
	char err[512] = "";
	bool json = false;
	int opt, ret;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":f:Uh", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			if (img_parse_format("info", optarg, &oo.format) < 0)
				return EXIT_USAGE;
			break;
		case 'O':
			if (parse_output_arg("info", optarg, &json) < 0)
				return EXIT_USAGE;
			break;
		case 'U': break;
		case 'h': img_usage(stdout); return 0;
		default: return img_bad_option("info", opt, argv);
		}
	}
	if (img_want_args("info", argc, argv, 1, 1, "the image's PATH") < 0)
		return EXIT_USAGE;

	ret = blk_open(argv[optind], &oo, &b, err, sizeof(err));
	if (ret < 0) {
		img_fail("info", argv[optind], ret, err);
		return EXIT_FAIL;
	}
	ret = blk_get_info(b, &in);
	blk_close(b);
	if (ret < 0) {
		img_fail("info", argv[optind], ret, NULL);
		return EXIT_FAIL;
	}
	if (json)
		info_json(argv[optind], &in);
	else
		info_human(argv[optind], &in);
	return 0;
}

/* ---- check ------------------------------------------------------------- */

static double percent(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static void check_human(const struct blk_check_result *r)
{
	if (!r->corruptions && !r->leaks && !r->check_errors)
		printf("No errors were found on the image.\n");
	if (r->corruptions)
		printf("\n%" PRIu64 " errors were found on the image.\n"
		       "Data may be corrupted, or further writes to the image "
		       "may corrupt it.\n", r->corruptions);
	if (r->leaks)
		printf("\n%" PRIu64 " leaked clusters were found on the image.\n"
		       "This means waste of disk space, but no harm to data.\n",
		       r->leaks);
	if (r->check_errors)
		printf("\n%" PRIu64 " internal errors have occurred during the "
		       "check.\n", r->check_errors);
	if (r->total_clusters && r->allocated_clusters)
		printf("%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated, %0.2f%% "
		       "fragmented, %0.2f%% compressed clusters\n",
		       r->allocated_clusters, r->total_clusters,
		       percent(r->allocated_clusters, r->total_clusters),
		       percent(r->fragmented_clusters, r->allocated_clusters),
		       percent(r->compressed_clusters, r->allocated_clusters));
	if (r->image_end_offset)
		printf("Image end offset: %" PRIu64 "\n", r->image_end_offset);
}

/* qemu-img's shape: counts appear only when non-zero. */
static void check_json(const char *path, enum blk_format fmt,
		       const struct blk_check_result *r)
{
	JsonBuilder *jb = json_builder_new();

	json_builder_begin_object(jb);
	if (r->image_end_offset)
		add_int(jb, "image-end-offset", r->image_end_offset);
	if (r->total_clusters)
		add_int(jb, "total-clusters", r->total_clusters);
	if (r->corruptions)
		add_int(jb, "corruptions", r->corruptions);
	if (r->leaks)
		add_int(jb, "leaks", r->leaks);
	add_int(jb, "check-errors", r->check_errors);
	if (r->allocated_clusters)
		add_int(jb, "allocated-clusters", r->allocated_clusters);
	if (r->fragmented_clusters)
		add_int(jb, "fragmented-clusters", r->fragmented_clusters);
	if (r->compressed_clusters)
		add_int(jb, "compressed-clusters", r->compressed_clusters);
	add_str(jb, "filename", path);
	add_str(jb, "format", blk_format_name(fmt));
	json_builder_end_object(jb);
	print_json(jb);
	g_object_unref(jb);
}

static int img_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'O' },
		{ "force-share", no_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct blk_open_opts oo = { .readonly = true };
	struct blk_check_result res = { 0 };
	enum blk_format fmt;
	struct blk *b;
	char err[512] = "";
	bool json = false, quiet = false;
	int opt, ret;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":f:r:qUh", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			if (img_parse_format("check", optarg, &oo.format) < 0)
				return EXIT_USAGE;
			break;
		case 'O':
			if (parse_output_arg("check", optarg, &json) < 0)
				return EXIT_USAGE;
			break;
		case 'r':
			fprintf(stderr, "vivarium img check: -r: vivarium does not repair "
				"images (qemu-img check -r can)\n");
			return EXIT_USAGE;
		case 'q': quiet = true; break;
		case 'U': oo.no_lock = true; break;
		case 'h': img_usage(stdout); return 0;
		default: return img_bad_option("check", opt, argv);
		}
	}
	if (img_want_args("check", argc, argv, 1, 1, "the image's PATH") < 0)
		return EXIT_USAGE;

	ret = blk_open(argv[optind], &oo, &b, err, sizeof(err));
	if (ret < 0) {
		img_fail("check", argv[optind], ret, err);
		return EXIT_FAIL;
	}
	fmt = blk_get_format(b);
	ret = blk_check(b, &res, stderr);
	blk_close(b);
	if (ret < 0) {
		fprintf(stderr, "vivarium img check: '%s': the check could not "
			"complete: %s\n", argv[optind], strerror(-ret));
		return EXIT_FAIL;
	}
	if (json)
		check_json(argv[optind], fmt, &res);
	else if (!quiet)
		check_human(&res);
	if (res.check_errors)
		return EXIT_FAIL;
	if (res.corruptions)
		return CHECK_CORRUPT;
	return res.leaks ? CHECK_LEAKS : 0;
}

int cmd_img(int argc, char **argv)
{
	static const struct subcommand subs[] = {
		{ "create", img_create },
		{ "info", img_info },
		{ "check", img_check },
		{ "convert", img_convert },
		{ "rebase", img_rebase },
		{ "commit", img_commit },
	};
	int r;

	if (subcommand_run(subs, sizeof(subs) / sizeof(subs[0]), img_usage,
			   argc, argv, &r))
		return r;
	fprintf(stderr, "vivarium img: unknown command '%s' (create, info, check, "
		"convert, rebase, commit; see 'vivarium img --help')\n", argv[1]);
	return EXIT_USAGE;
}
