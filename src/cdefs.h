/*
 * cdefs.h - compiler annotations shared by every module.
 *
 * Prototypes carry these so that the compiler checks what the comments
 * promise: NONNULL arguments, results that must not be ignored (WUNRES),
 * printf-style formats and fresh allocations.
 */
#ifndef EGRESS_CDEFS_H
#define EGRESS_CDEFS_H

#define NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#define WUNRES __attribute__((warn_unused_result))
#define PRINTF(f, a) __attribute__((format(printf, f, a)))
#define MALLOC __attribute__((malloc))
#define NORETURN __attribute__((noreturn))
#define UNUSED __attribute__((unused))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif /* EGRESS_CDEFS_H */
