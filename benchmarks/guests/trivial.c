/* Start-up: powers off at once (crt0 calls PSCI SYSTEM_OFF when main returns). */
int main(void)
{
    return 0;
}
