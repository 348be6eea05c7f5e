/* gate.h: a counting gate that admits callers in arrival order, with a bounded
 * wait. Used to bound how many large document transfers hold memory at once. */
#ifndef CONFIDOC_GATE_H
#define CONFIDOC_GATE_H

#include "common/err.h"

typedef struct gate gate;

/* A gate of `slots` (>= 1) places. */
cd_err gate_new(unsigned slots, gate **out);
/* NULL is a no-op. No caller may be inside or waiting. */
void gate_free(gate *g);

/* Takes a place; waits at most timeout_ms, first come first served.
 * CD_OK, or CD_ERR_TIMEOUT (nothing taken). */
cd_err gate_enter(gate *g, unsigned timeout_ms);
/* Gives a place back (to the longest waiter, if any). */
void gate_leave(gate *g);
/* Places in all, as given to gate_new. */
unsigned gate_slots(const gate *g);
/* Callers waiting now (for tests and monitoring). */
unsigned gate_waiting(gate *g);

#endif
