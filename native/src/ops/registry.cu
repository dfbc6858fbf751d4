// The op table is filled once, from every op family's file.
#include "../runtime.h"

namespace gw {

void register_unary();
void register_binary();
void register_glu();
void register_norm();
void register_softmax();
void register_rope();
void register_copy();
void register_rows();
void register_layout();
void register_generate();
void register_reduce();
void register_sort();
void register_mul_mat();
void register_mul_mat_id();
void register_flash_attn();

void register_all_ops() {
  static bool done = false;
  if (done) return;
  done = true;
  register_unary();
  register_binary();
  register_glu();
  register_norm();
  register_softmax();
  register_rope();
  register_copy();
  register_rows();
  register_layout();
  register_generate();
  register_reduce();
  register_sort();
  register_mul_mat();
  register_mul_mat_id();
  register_flash_attn();
}

} // namespace gw
