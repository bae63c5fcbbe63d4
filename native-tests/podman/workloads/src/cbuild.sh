# A C project of 40 files built with make -j2, cleaned and built again; the program's output checked.
set -e
d=/src/cbuild
mkdir -p $d
cd $d
for i in $(seq 1 40); do
  printf '#include "all.h"\nint f%d(int x) { int s = 0; for (int i = 0; i < x; i++) s += i * %d %% 7; return s; }\n' $i $i > f$i.c
  echo "int f$i(int);" >> all.h
done
{ echo '#include <stdio.h>'; echo '#include "all.h"'; echo 'int main(void) { long s = 0;'
  for i in $(seq 1 40); do echo "s += f$i(1000);"; done
  echo 'printf("%ld\\n", s); return 0; }'; } > main.c
printf 'OBJS=$(patsubst %%.c,%%.o,$(wildcard *.c))\nprog: $(OBJS) libf.a\n\tcc -o $@ main.o libf.a\nlibf.a: $(filter-out main.o,$(OBJS))\n\tar rcs $@ $^\n%%.o: %%.c all.h\n\tcc -O1 -c -o $@ $<\nclean:\n\trm -f *.o *.a prog\n' > Makefile
make -s -j2
./prog > out1
make -s clean
make -s -j2
./prog > out2
cmp out1 out2
cat out1
