// mimalloc's own option API, by name (see build.rs and main.rs's tune_allocator).
#include <mimalloc.h>

void iam_audit_tune_mimalloc(void) {
  // Give freed memory back to the OS at once instead of after a delay (1 s in mimalloc v3).
  mi_option_set(mi_option_purge_delay, 0);
  // Commit arena memory as it is used rather than the whole arena up front.
  mi_option_set(mi_option_arena_eager_commit, 0);
}
