/* log.h - leveled logging to stderr.
 *
 * One line per event, prefixed with the level and a UTC timestamp. Callers never pass tokens,
 * passwords or message bodies: logs are for operators, and operators must not see secrets.
 */
#ifndef PARLEY_COMMON_LOG_H
#define PARLEY_COMMON_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Sets the minimum level that is printed (default LOG_INFO). */
void log_set_level(enum log_level level);

/* Parses "debug", "info", "warn", "error"; returns -1 if unknown. name is borrowed. */
int log_level_parse(const char *name);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
