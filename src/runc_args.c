/*
 * runc_args.c - finding the subcommand and the bundle in runc's command
 * line.
 *
 * runc 1.1 parses its command line with urfave/cli v1 on top of Go's flag
 * package, and the wrapper must read it the same way or it would inject
 * into the wrong directory (or miss a create):
 *   - a flag is "-name" or "--name", optionally "=value"; "-" alone is a
 *     positional argument and "--" ends the flags;
 *   - a flag that takes a value and has no "=" takes the next argument,
 *     whatever it looks like;
 *   - global flags stop at the first positional argument, the subcommand;
 *   - a subcommand's flags may also follow its positional arguments (the
 *     CLI library moves them to the front), up to "--".
 * Checked against runc 1.1.5: `runc create ID --bundle DIR` and
 * `runc create -bundle=DIR ID` both use DIR; `runc create ID -- --bundle
 * DIR` does not.
 */
#include "runc.h"

#include <string.h>

/* runc's global flags that take a value (the others are booleans). */
static const char *const global_value_flags[] = {
	"log", "log-format", "root", "criu", "rootless",
};

/* The value-taking flags of `runc create` and `runc run`. */
static const char *const create_value_flags[] = {
	"bundle", "b", "console-socket", "pid-file", "preserve-fds",
};

static bool in_list(const char *name, size_t len, const char *const *list,
		    size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(list[i]) == len && memcmp(list[i], name, len) == 0)
			return true;
	return false;
}

/* An argument that Go's flag package reads as a flag. */
static bool is_flag(const char *arg)
{
	return arg[0] == '-' && arg[1] != '\0';
}

/*
 * Splits a flag argument ("-x", "--name=value") into its name and, if it
 * has one, its inline value.
 */
static void split_flag(const char *arg, const char **name, size_t *len,
		       const char **value)
{
	const char *n = arg + 1;
	const char *eq;

	if (*n == '-')
		n++;
	eq = strchr(n, '=');
	*name = n;
	*len = eq ? (size_t)(eq - n) : strlen(n);
	*value = eq ? eq + 1 : NULL;
}

static bool is_bundle_flag(const char *name, size_t len)
{
	return (len == 6 && memcmp(name, "bundle", 6) == 0) ||
	       (len == 1 && name[0] == 'b');
}

/* Scans the flags and arguments of create/run, from argv[i]. */
static void parse_create(struct runc_args *a, int i, int argc,
			 char *const *argv)
{
	while (i < argc) {
		const char *arg = argv[i];
		const char *name, *value;
		size_t len;

		if (strcmp(arg, "--") == 0) {
			if (!a->container_id && i + 1 < argc)
				a->container_id = argv[i + 1];
			return;
		}
		if (!is_flag(arg)) {
			if (!a->container_id)
				a->container_id = arg;
			i++;
			continue;
		}
		split_flag(arg, &name, &len, &value);
		if (!value &&
		    in_list(name, len, create_value_flags,
			    ARRAY_SIZE(create_value_flags)) &&
		    i + 1 < argc) {
			value = argv[i + 1];
			i++;
		}
		if (value && is_bundle_flag(name, len))
			a->bundle = value[0] ? value : ".";
		i++;
	}
}

void runc_args_parse(struct runc_args *a, int argc, char *const *argv)
{
	int i = 1;

	a->subcmd = -1;
	a->bundle = ".";
	a->container_id = NULL;
	a->inject = false;

	while (i < argc) {
		const char *arg = argv[i];
		const char *name, *value;
		size_t len;

		if (strcmp(arg, "--") == 0) {
			i++;
			break;
		}
		if (!is_flag(arg))
			break;
		split_flag(arg, &name, &len, &value);
		if (!value && in_list(name, len, global_value_flags,
				      ARRAY_SIZE(global_value_flags)))
			i++;
		i++;
	}
	if (i >= argc)
		return;
	a->subcmd = i;
	if (strcmp(argv[i], "create") == 0 || strcmp(argv[i], "run") == 0) {
		a->inject = true;
		parse_create(a, i + 1, argc, argv);
	}
}
