/* sim.h compiles on its own, with nothing included before it. */
#include "sim.h"

int main(void)
{
    sim_outcome outcome = {0};
    return (int)outcome.kind;
}
