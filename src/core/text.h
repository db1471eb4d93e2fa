/* text.h - the rules for user-visible text: display names, chat titles and message bodies.
 *
 * Pure functions over UTF-8, in one place so that signup, chat.create, chat.update and msg.send
 * apply the same rules. Lengths of names are counted in code points (what a user counts as
 * characters, near enough), bodies in bytes (what the server stores). A name or a body must hold
 * at least one visible character: text made only of white space (ASCII or not: U+3000,
 * U+00A0...) or of invisible code points (U+200B, U+2060, U+FEFF, U+3164...) renders as nothing
 * and lets one user pass for blank or for someone else. Names also refuse control characters
 * and the bidi override and isolate controls (U+202A-U+202E, U+2066-U+2069), which reorder what
 * follows them on screen ("evil\u202Egnp.exe"); bodies keep them, as mixed-direction text needs
 * them.
 */
#ifndef PARLEY_CORE_TEXT_H
#define PARLEY_CORE_TEXT_H

#include <stddef.h>
#include <stdint.h>

#define TEXT_DISPLAY_NAME_MAX 64 /* code points */
#define TEXT_TITLE_MAX 100       /* code points */

/* 1 if code point c shows something on screen: not white space, not a control or format
 * character, not default-ignorable, not a blank lookalike (U+2800 BRAILLE PATTERN BLANK). */
int text_is_visible(uint32_t c);

/* 1 if c is a bidi embedding, override or isolate control (U+202A-U+202E, U+2066-U+2069). */
int text_is_bidi_control(uint32_t c);

/* Checks s (n bytes, borrowed; need not be NUL-terminated) as a name: valid UTF-8 without NUL,
 * 1 to max_chars code points, no control characters (C0, DEL, C1, U+2028, U+2029), no bidi
 * controls, at least one visible character. Returns 0, PARLEY_ETOO_LARGE (over max_chars), or
 * PARLEY_EBAD_REQUEST. */
int text_check_name(const char *s, size_t n, size_t max_chars);

/* Checks a message body s (n bytes, borrowed): valid UTF-8 without NUL, with at least one
 * visible character. Returns 0 or PARLEY_EBAD_REQUEST. (Its length in bytes is proto's.) */
int text_check_body(const char *s, size_t n);

/* How many bytes of s (n bytes of UTF-8, borrowed) fit in max bytes without cutting a code
 * point: n when n <= max, else the largest length <= max that ends at a character boundary. */
size_t text_utf8_fit(const char *s, size_t n, size_t max);

#endif
