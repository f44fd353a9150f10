/* A stand-in libcublasLt.so.<FAKE_MAJOR> (12 or 13), built twice with the version node cuBLASLt
   itself uses (libcublasLt.so.<major>: fake_cublasLt12.map, fake_cublasLt13.map), for the test of
   a process holding two cuBLASLt majors (torch built for CUDA 12 plus an extension built for CUDA
   13): cublasLtMatmul returns a status that says which major ran it, 1000 + major.
   The descriptor getters the probe decodes a call with count their reads, and whether the
   descriptor read was made by a client of this major: the clients' descriptors are an int holding
   their major (cublasLt_major_client.c). The matmul descriptor's attributes read as zeros; every
   matrix layout read fails, so the probe's decoding stops at layout A and records nothing (no
   device work): it passes the call through. fakeLtReads reports the counts. */
#include <stddef.h>
#include <string.h>

#define FAKE_STATUS (1000 + FAKE_MAJOR)
#define CUBLAS_STATUS_NOT_SUPPORTED 15

static int desc_reads, layout_reads, foreign_reads;

static void count_owner(const void* descriptor) {
  if (descriptor == NULL || *(const int*)descriptor != FAKE_MAJOR) ++foreign_reads;
}

int cublasLtMatmul(void* lt, void* desc, const void* alpha, const void* A, void* Adesc,
                   const void* B, void* Bdesc, const void* beta, const void* C, void* Cdesc,
                   void* D, void* Ddesc, const void* algo, void* workspace, size_t workspace_bytes,
                   void* stream) {
  (void)lt, (void)desc, (void)alpha, (void)A, (void)Adesc, (void)B, (void)Bdesc, (void)beta;
  (void)C, (void)Cdesc, (void)D, (void)Ddesc, (void)algo, (void)workspace, (void)workspace_bytes;
  (void)stream;
  return FAKE_STATUS;
}

int cublasLtMatmulDescGetAttribute(const void* desc, int attr, void* buf, size_t size,
                                   size_t* written) {
  (void)attr;
  ++desc_reads;
  count_owner(desc);
  if (buf != NULL) memset(buf, 0, size);
  if (written != NULL) *written = size;
  return 0; /* CUBLAS_STATUS_SUCCESS */
}

int cublasLtMatrixLayoutGetAttribute(const void* layout, int attr, void* buf, size_t size,
                                     size_t* written) {
  (void)attr, (void)buf, (void)size, (void)written;
  ++layout_reads;
  count_owner(layout);
  return CUBLAS_STATUS_NOT_SUPPORTED;
}

/* This library's reads so far (not a cuBLASLt function: the test's window into the stand-in). */
void fakeLtReads(int* desc, int* layout, int* foreign) {
  *desc = desc_reads;
  *layout = layout_reads;
  *foreign = foreign_reads;
}
