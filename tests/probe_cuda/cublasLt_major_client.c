/* A client of one cuBLASLt major (linked against fake_cublasLt_major.c built as
   libcublasLt.so.<MAJOR>): its references are cublasLtMatmul@libcublasLt.so.<MAJOR> and
   fakeLtReads@libcublasLt.so.<MAJOR>, as in a library built against that CUDA.
   Exports cublasLt_major_client_<MAJOR>() and cublasLt_major_reads_<MAJOR>(). */
#include <stddef.h>

int cublasLtMatmul(void* lt, void* desc, const void* alpha, const void* A, void* Adesc,
                   const void* B, void* Bdesc, const void* beta, const void* C, void* Cdesc,
                   void* D, void* Ddesc, const void* algo, void* workspace, size_t workspace_bytes,
                   void* stream);
void fakeLtReads(int* desc, int* layout, int* foreign);

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)

/* The descriptors this client passes: each holds the client's major, so that a stand-in getter
   can tell whose descriptor it was asked to read. */
static int desc_tag = CLIENT_MAJOR, layout_tag = CLIENT_MAJOR;

/* The status of one cublasLtMatmul with non-null descriptors (and a null handle). */
__attribute__((visibility("default"))) int CAT(cublasLt_major_client_, CLIENT_MAJOR)(void) {
  float one = 1.0f, c = 0.0f;
  return cublasLtMatmul(NULL, &desc_tag, &one, &one, &layout_tag, &one, &layout_tag, &one, &c,
                        &layout_tag, &c, &layout_tag, NULL, NULL, 0, NULL);
}

/* The reads of this client's libcublasLt: its matmul descriptor getter, its layout getter, and
   those of a descriptor that was not this major's. */
__attribute__((visibility("default"))) void CAT(cublasLt_major_reads_, CLIENT_MAJOR)(int* desc,
                                                                                     int* layout,
                                                                                     int* foreign) {
  fakeLtReads(desc, layout, foreign);
}
