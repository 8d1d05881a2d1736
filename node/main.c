/* main.c: placeholder until the node loop lands. */
int main(void) { return 2; }
