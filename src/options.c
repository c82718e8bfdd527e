/* options.c -- the option table (options.h) read from TESSERA_* variables,
 * and tessera's formatter and message writer.
 *
 * Options are read once, lazily, by scanning `environ` (getenv may not be
 * ready while we are preloaded, and nothing here may allocate). Setuid
 * programs ignore the environment. Messages are formatted into a stack
 * buffer and written with one write(2): no stdio, no allocation, safe in a
 * signal handler or with the heap half broken.
 */
#include "internal.h"

#include <stdarg.h>
#include <string.h>

extern char **environ;

typedef enum { KIND_BOOL, KIND_LONG, KIND_SIZE, KIND_TEXT } option_kind_t;

static const struct option_def {
  const char *name;
  option_kind_t kind;
  const char *default_text;
  const char *doc;
} option_defs[TSR_OPT_COUNT] = {
#define TSR_OPTION_DEF(id, name, kind, def, doc) { name, KIND_##kind, def, doc },
  TSR_OPTIONS(TSR_OPTION_DEF)
#undef TSR_OPTION_DEF
};

tsr_option_value_t tsr_option_values[TSR_OPT_COUNT];
/* Copies of the texts: programs rewrite their environment (redis and nginx
 * reuse it for the process title), and the exit report reads them late. */
static char option_texts[TSR_OPT_COUNT][256];
static _Atomic int options_state;   /* 0 unread, 1 reading, 2 read */

static bool text_equals(const char *a, const char *b) {
  while (*a && *b) {
    char x = *a++, y = *b++;
    if (x >= 'A' && x <= 'Z') x = (char)(x + 32);
    if (y >= 'A' && y <= 'Z') y = (char)(y + 32);
    if (x != y) return false;
  }
  return *a == *b;
}

/* Parse text as the option's kind; false if malformed. */
static bool option_parse(option_kind_t kind, const char *text, long *out) {
  if (kind == KIND_TEXT) { *out = 0; return true; }
  if (kind == KIND_BOOL) {
    if (text_equals(text, "1") || text_equals(text, "on") || text_equals(text, "yes") || text_equals(text, "true")) { *out = 1; return true; }
    if (text_equals(text, "0") || text_equals(text, "off") || text_equals(text, "no") || text_equals(text, "false") || !*text) { *out = 0; return true; }
    return false;
  }
  const char *s = text;
  bool negative = *s == '-';
  if (negative) s++;
  if (*s < '0' || *s > '9') return false;
  long value = 0;
  while (*s >= '0' && *s <= '9') {
    if (value > (1L << 50)) return false;
    value = value * 10 + (*s++ - '0');
  }
  if (kind == KIND_SIZE) {
    if (*s == 'k' || *s == 'K') { value <<= 10; s++; }
    else if (*s == 'm' || *s == 'M') { value <<= 20; s++; }
    else if (*s == 'g' || *s == 'G') { value <<= 30; s++; }
    if (*s == 'b' || *s == 'B') s++;
  }
  if (*s != 0) return false;
  *out = negative ? -value : value;
  return true;
}

static const char *env_lookup(const char *name) {
  if (environ == NULL) return NULL;
  size_t prefix = 8;   /* "TESSERA_" */
  size_t len = strlen(name);
  for (char **e = environ; *e != NULL; e++) {
    const char *v = *e;
    if (strncmp(v, "TESSERA_", prefix) == 0 && strncmp(v + prefix, name, len) == 0 && v[prefix + len] == '=')
      return v + prefix + len + 1;
  }
  return NULL;
}

void tsr_options_init(void) {
  int expected = 0;
  if (!atomic_compare_exchange_strong(&options_state, &expected, 1)) return;
  bool use_env = environ != NULL && !tsr_platform_is_setuid();
  for (int i = 0; i < TSR_OPT_COUNT; i++) {
    const struct option_def *def = &option_defs[i];
    long value = 0;
    option_parse(def->kind, def->default_text, &value);
    const char *text = def->default_text;
    const char *env = use_env ? env_lookup(def->name) : NULL;
    if (env != NULL) {
      long parsed;
      if (option_parse(def->kind, env, &parsed)) { value = parsed; text = env; }
      else tsr_message("warning: TESSERA_%s=%s is not a valid %s; using the default %s", def->name, env,
                       def->kind == KIND_BOOL ? "on/off value" : def->kind == KIND_SIZE ? "size" : "number",
                       def->default_text);
    }
    tsr_option_values[i].number = value;
    size_t len = strlen(text);
    if (len >= sizeof option_texts[i]) len = sizeof option_texts[i] - 1;
    memcpy(option_texts[i], text, len);
    option_texts[i][len] = 0;
    tsr_option_values[i].text = option_texts[i];
  }
  /* Before libc has set environ (a very early call from the loader) keep the
   * defaults and look again later. */
  atomic_store(&options_state, environ != NULL ? 2 : 0);
}

long tsr_option_long(tsr_option_id_t id) {
  if (tsr_unlikely(atomic_load_explicit(&options_state, memory_order_acquire) != 2)) {
    tsr_options_init();
    if (atomic_load(&options_state) != 2) {
      long value = 0;
      option_parse(option_defs[id].kind, option_defs[id].default_text, &value);
      return value;
    }
  }
  return tsr_option_values[id].number;
}

const char *tsr_option_text(tsr_option_id_t id) {
  if (atomic_load_explicit(&options_state, memory_order_acquire) != 2) tsr_options_init();
  const char *text = tsr_option_values[id].text;
  return text != NULL ? text : option_defs[id].default_text;
}

void tsr_options_print(int fd) {
  char line[512];
  for (int i = 0; i < TSR_OPT_COUNT; i++) {
    size_t n = tsr_format(line, sizeof line, "TESSERA_%s=%s  (default %s)  %s\n", option_defs[i].name,
                          tsr_option_text((tsr_option_id_t)i), option_defs[i].default_text, option_defs[i].doc);
    tsr_platform_write(fd, line, n);
  }
}

/* ---- formatting --------------------------------------------------------------- */

static size_t put_unsigned(char *buf, size_t at, size_t size, unsigned long long v, unsigned base) {
  char digits[32];
  int n = 0;
  do { digits[n++] = "0123456789abcdef"[v % base]; v /= base; } while (v != 0);
  while (n > 0) { if (at + 1 < size) buf[at] = digits[n - 1]; at++; n--; }
  return at;
}

size_t tsr_format_va(char *buf, size_t size, const char *fmt, va_list ap) {
  size_t at = 0;
  for (const char *f = fmt; *f; f++) {
    if (*f != '%') { if (at + 1 < size) buf[at] = *f; at++; continue; }
    f++;
    int longs = 0;
    bool is_size = false;
    bool left = false;
    unsigned width = 0;
    if (*f == '-') { left = true; f++; }
    while (*f >= '0' && *f <= '9') width = width * 10 + (unsigned)(*f++ - '0');
    size_t start = at;
    while (*f == 'l') { longs++; f++; }
    if (*f == 'z') { is_size = true; f++; }
    switch (*f) {
    case 's': {
      const char *s = va_arg(ap, const char *);
      if (s == NULL) s = "(null)";
      while (*s) { if (at + 1 < size) buf[at] = *s; at++; s++; }
      break;
    }
    case 'd': {
      long long v = longs ? va_arg(ap, long) : is_size ? (long long)va_arg(ap, long) : va_arg(ap, int);
      if (v < 0) { if (at + 1 < size) buf[at] = '-'; at++; v = -v; }
      at = put_unsigned(buf, at, size, (unsigned long long)v, 10);
      break;
    }
    case 'u': case 'x': {
      unsigned long long v = (longs || is_size) ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
      at = put_unsigned(buf, at, size, v, *f == 'x' ? 16 : 10);
      break;
    }
    case 'p': {
      if (at + 2 < size) { buf[at] = '0'; buf[at + 1] = 'x'; }
      at += 2;
      at = put_unsigned(buf, at, size, (uintptr_t)va_arg(ap, void *), 16);
      break;
    }
    case 'c': { char ch = (char)va_arg(ap, int); if (at + 1 < size) buf[at] = ch; at++; break; }
    case '%': if (at + 1 < size) buf[at] = '%'; at++; break;
    default: if (*f == 0) f--; break;
    }
    /* Pad to the width: after the text if left-aligned, else shift it right. */
    size_t len = at - start;
    if (len < width) {
      size_t pad = width - len;
      if (!left && at + pad < size) {
        memmove(buf + start + pad, buf + start, len);
        memset(buf + start, ' ', pad);
      } else if (left) {
        for (size_t i = 0; i < pad; i++) { if (at + 1 < size) buf[at] = ' '; at++; }
        continue;
      }
      at += left ? 0 : pad;
    }
  }
  if (size > 0) buf[at < size ? at : size - 1] = 0;
  return at < size ? at : size - 1;
}

size_t tsr_format(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t n = tsr_format_va(buf, size, fmt, ap);
  va_end(ap);
  return n;
}

void tsr_message(const char *fmt, ...) {
  char line[1024];
  memcpy(line, "tessera: ", 9);
  va_list ap;
  va_start(ap, fmt);
  size_t n = 9 + tsr_format_va(line + 9, sizeof line - 10, fmt, ap);
  va_end(ap);
  line[n++] = '\n';
  tsr_platform_write(2, line, n);
}
