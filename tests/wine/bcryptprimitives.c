/* A stand-in for Windows' bcryptprimitives.dll, which Debian's Wine 8.0 lacks: Rust's standard
 * library (1.78+) takes its random bytes from ProcessPrng there. This one gives them from
 * RtlGenRandom (advapi32's SystemFunction036), which Wine has. Only the Wine test loads it,
 * from the folder of the eso-recovery.exe it runs; a release ships nothing of it. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
  while (length > 0) {
    ULONG chunk = length > 0x7fffffff ? 0x7fffffff : (ULONG)length;
    if (!SystemFunction036(data, chunk)) return FALSE;
    data += chunk;
    length -= chunk;
  }
  return TRUE;
}
