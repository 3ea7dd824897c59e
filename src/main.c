/* paddock: the HappyHorse video-generation API, self-hosted. */
#include "core/core.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("paddock\n");
    return 0;
}
