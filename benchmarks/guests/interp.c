/* A bytecode interpreter: a stack machine with a switch dispatch (jump table, indirect branches)
 * running a program that sums i*i mod 7 over a counted loop, ITERATIONS loop rounds in all.
 * Prints the result. */
#include "guest.h"

#ifndef ITERATIONS
#define ITERATIONS 100
#endif

enum opcode { PUSH, LOAD, STORE, ADD, SUB, MUL, MOD, DUP, JNZ, JMP, HALT };

/* locals: 0 = counter, 1 = accumulator */
static const int32_t program[] = {
    PUSH, ITERATIONS, STORE, 0,     /* counter = ITERATIONS */
    PUSH, 0, STORE, 1,              /* acc = 0 */
    LOAD, 0, JNZ, 14,               /* 8: if counter goto body */
    JMP, 36,                        /* 12: done */
    LOAD, 0, DUP, MUL, PUSH, 7, MOD, /* 14: counter * counter % 7 */
    LOAD, 1, ADD, STORE, 1,         /* 21: acc += it */
    LOAD, 0, PUSH, 1, SUB, STORE, 0, /* 26: counter -= 1 */
    JMP, 8,                         /* 33 */
    HALT,                           /* 35 (unused) */
    HALT,                           /* 36 */
};

static int64_t run(const int32_t *code)
{
    int64_t stack[16], locals[4] = {0};
    int sp = 0, pc = 0;
    for (;;) {
        int32_t op = code[pc++];
        switch (op) {
        case PUSH: stack[sp++] = code[pc++]; break;
        case LOAD: stack[sp++] = locals[code[pc++]]; break;
        case STORE: locals[code[pc++]] = stack[--sp]; break;
        case ADD: sp--; stack[sp - 1] += stack[sp]; break;
        case SUB: sp--; stack[sp - 1] -= stack[sp]; break;
        case MUL: sp--; stack[sp - 1] *= stack[sp]; break;
        case MOD: sp--; stack[sp - 1] %= stack[sp]; break;
        case DUP: stack[sp] = stack[sp - 1]; sp++; break;
        case JNZ: if (stack[--sp]) pc = code[pc]; else pc++; break;
        case JMP: pc = code[pc]; break;
        case HALT: return locals[1];
        default: return -1;
        }
    }
}

int main(void)
{
    uart_puts("interp ");
    uart_put_dec(run(program));
    uart_putc('\n');
    return 0;
}
