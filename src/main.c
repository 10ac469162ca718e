#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "version") == 0) {
        printf("portico %s\n", PT_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: portico run|check|proxy|version\n");
    return 2;
}
