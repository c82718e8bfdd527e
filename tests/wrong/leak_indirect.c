/* expect: memory-leak
 * A lost list: the head is definitely lost, the rest indirectly. */
#include "wrong.h"
struct node { struct node *next; char data[24]; };
struct node *list;
int main(void) {
  for (int i = 0; i < 10; i++) {
    struct node *n = malloc(sizeof *n);
    n->next = list;
    list = n;
  }
  list = NULL;
  scrub_stack();
  return 0;
}
