/*
 * fltmini.h — the part of the Filter Manager's API (fltKernel.h) the sensor
 * uses, with the real x64 layouts.  mingw-w64 ships neither fltKernel.h nor
 * an import library for FLTMGR.SYS; the import library is built from
 * fltmgr.def with dlltool (images/meson.build).
 *
 * Only what the sensor touches is declared, and every offset a real
 * FLTMGR.SYS (and fleetsim's emulated one, sim/events.c) relies on is
 * asserted below, so a mistake here fails the build rather than the run.
 */
#ifndef SENSOR_FLTMINI_H
#define SENSOR_FLTMINI_H

#include <ntifs.h>

#define FLT_REGISTRATION_VERSION 0x0203
#define IRP_MJ_OPERATION_END ((UCHAR)0x80)

typedef struct _FLT_FILTER *PFLT_FILTER;
typedef struct _FLT_VOLUME *PFLT_VOLUME;
typedef struct _FLT_INSTANCE *PFLT_INSTANCE;
typedef PVOID PFLT_CONTEXT;

typedef enum _FLT_PREOP_CALLBACK_STATUS {
    FLT_PREOP_SUCCESS_WITH_CALLBACK = 0,
    FLT_PREOP_SUCCESS_NO_CALLBACK = 1,
    FLT_PREOP_PENDING = 2,
    FLT_PREOP_DISALLOW_FASTIO = 3,
    FLT_PREOP_COMPLETE = 4,
    FLT_PREOP_SYNCHRONIZE = 5
} FLT_PREOP_CALLBACK_STATUS;

typedef enum _FLT_POSTOP_CALLBACK_STATUS {
    FLT_POSTOP_FINISHED_PROCESSING = 0,
    FLT_POSTOP_MORE_PROCESSING_REQUIRED = 1
} FLT_POSTOP_CALLBACK_STATUS;

/* FLT_PARAMETERS: the write arm, and room for the union's largest arm. */
typedef union _FLT_PARAMETERS {
    struct {
        ULONG Length;
        ULONG Key;
        LARGE_INTEGER ByteOffset;
        PVOID WriteBuffer;
        PMDL MdlAddress;
    } Write;
    PVOID Others[6];
} FLT_PARAMETERS;

typedef struct _FLT_IO_PARAMETER_BLOCK {
    ULONG IrpFlags;
    UCHAR MajorFunction;
    UCHAR MinorFunction;
    UCHAR OperationFlags;
    UCHAR Reserved;
    PFILE_OBJECT TargetFileObject;
    PFLT_INSTANCE TargetInstance;
    FLT_PARAMETERS Parameters;
} FLT_IO_PARAMETER_BLOCK, *PFLT_IO_PARAMETER_BLOCK;

typedef struct _FLT_CALLBACK_DATA {
    ULONG Flags;
    PETHREAD Thread;
    PFLT_IO_PARAMETER_BLOCK Iopb;
    IO_STATUS_BLOCK IoStatus;
    PVOID TagData;
    PVOID FilterContext[4];
    KPROCESSOR_MODE RequestorMode;
} FLT_CALLBACK_DATA, *PFLT_CALLBACK_DATA;

typedef struct _FLT_RELATED_OBJECTS {
    USHORT Size;
    USHORT TransactionContext;
    PFLT_FILTER Filter;
    PFLT_VOLUME Volume;
    PFLT_INSTANCE Instance;
    PFILE_OBJECT FileObject;
    PVOID Transaction;
} FLT_RELATED_OBJECTS, *PFLT_RELATED_OBJECTS;

typedef const FLT_RELATED_OBJECTS *PCFLT_RELATED_OBJECTS;

typedef FLT_PREOP_CALLBACK_STATUS (*PFLT_PRE_OPERATION_CALLBACK)(
    PFLT_CALLBACK_DATA Data, PCFLT_RELATED_OBJECTS FltObjects, PVOID *CompletionContext);
typedef FLT_POSTOP_CALLBACK_STATUS (*PFLT_POST_OPERATION_CALLBACK)(
    PFLT_CALLBACK_DATA Data, PCFLT_RELATED_OBJECTS FltObjects, PVOID CompletionContext,
    ULONG Flags);
typedef NTSTATUS (*PFLT_FILTER_UNLOAD_CALLBACK)(ULONG Flags);

typedef struct _FLT_OPERATION_REGISTRATION {
    UCHAR MajorFunction;
    ULONG Flags;
    PFLT_PRE_OPERATION_CALLBACK PreOperation;
    PFLT_POST_OPERATION_CALLBACK PostOperation;
    PVOID Reserved1;
} FLT_OPERATION_REGISTRATION;

typedef struct _FLT_REGISTRATION {
    USHORT Size;
    USHORT Version;
    ULONG Flags;
    const void *ContextRegistration;
    const FLT_OPERATION_REGISTRATION *OperationRegistration;
    PFLT_FILTER_UNLOAD_CALLBACK FilterUnloadCallback;
    PVOID InstanceSetupCallback;
    PVOID InstanceQueryTeardownCallback;
    PVOID InstanceTeardownStartCallback;
    PVOID InstanceTeardownCompleteCallback;
    PVOID GenerateFileNameCallback;
    PVOID NormalizeNameComponentCallback;
    PVOID NormalizeContextCleanupCallback;
    PVOID TransactionNotificationCallback;
    PVOID NormalizeNameComponentExCallback;
    PVOID SectionNotificationCallback;
} FLT_REGISTRATION;

__declspec(dllimport) NTSTATUS NTAPI FltRegisterFilter(
    PDRIVER_OBJECT Driver, const FLT_REGISTRATION *Registration, PFLT_FILTER *RetFilter);
__declspec(dllimport) NTSTATUS NTAPI FltStartFiltering(PFLT_FILTER Filter);
__declspec(dllimport) VOID NTAPI FltUnregisterFilter(PFLT_FILTER Filter);

#define FLT_ASSERT_AT(type, field, off)                                      \
    _Static_assert(__builtin_offsetof(type, field) == (off), #type "." #field)

FLT_ASSERT_AT(FLT_REGISTRATION, Version, 0x02);
FLT_ASSERT_AT(FLT_REGISTRATION, Flags, 0x04);
FLT_ASSERT_AT(FLT_REGISTRATION, ContextRegistration, 0x08);
FLT_ASSERT_AT(FLT_REGISTRATION, OperationRegistration, 0x10);
FLT_ASSERT_AT(FLT_REGISTRATION, FilterUnloadCallback, 0x18);
FLT_ASSERT_AT(FLT_REGISTRATION, InstanceSetupCallback, 0x20);
FLT_ASSERT_AT(FLT_REGISTRATION, InstanceQueryTeardownCallback, 0x28);
_Static_assert(sizeof(FLT_REGISTRATION) == 0x70, "FLT_REGISTRATION size");
FLT_ASSERT_AT(FLT_OPERATION_REGISTRATION, Flags, 0x04);
FLT_ASSERT_AT(FLT_OPERATION_REGISTRATION, PreOperation, 0x08);
FLT_ASSERT_AT(FLT_OPERATION_REGISTRATION, PostOperation, 0x10);
FLT_ASSERT_AT(FLT_OPERATION_REGISTRATION, Reserved1, 0x18);
_Static_assert(sizeof(FLT_OPERATION_REGISTRATION) == 0x20, "FLT_OPERATION_REGISTRATION size");
FLT_ASSERT_AT(FLT_CALLBACK_DATA, Thread, 0x08);
FLT_ASSERT_AT(FLT_CALLBACK_DATA, Iopb, 0x10);
FLT_ASSERT_AT(FLT_CALLBACK_DATA, IoStatus, 0x18);
FLT_ASSERT_AT(FLT_CALLBACK_DATA, TagData, 0x28);
FLT_ASSERT_AT(FLT_CALLBACK_DATA, FilterContext, 0x30);
FLT_ASSERT_AT(FLT_CALLBACK_DATA, RequestorMode, 0x50);
FLT_ASSERT_AT(FLT_IO_PARAMETER_BLOCK, MajorFunction, 0x04);
FLT_ASSERT_AT(FLT_IO_PARAMETER_BLOCK, OperationFlags, 0x06);
FLT_ASSERT_AT(FLT_IO_PARAMETER_BLOCK, TargetFileObject, 0x08);
FLT_ASSERT_AT(FLT_IO_PARAMETER_BLOCK, TargetInstance, 0x10);
FLT_ASSERT_AT(FLT_IO_PARAMETER_BLOCK, Parameters.Write.Length, 0x18);
FLT_ASSERT_AT(FLT_IO_PARAMETER_BLOCK, Parameters.Write.Key, 0x1C);
FLT_ASSERT_AT(FLT_IO_PARAMETER_BLOCK, Parameters.Write.ByteOffset, 0x20);
FLT_ASSERT_AT(FLT_IO_PARAMETER_BLOCK, Parameters.Write.WriteBuffer, 0x28);
FLT_ASSERT_AT(FLT_RELATED_OBJECTS, Filter, 0x08);
FLT_ASSERT_AT(FLT_RELATED_OBJECTS, Volume, 0x10);
FLT_ASSERT_AT(FLT_RELATED_OBJECTS, Instance, 0x18);
FLT_ASSERT_AT(FLT_RELATED_OBJECTS, FileObject, 0x20);
FLT_ASSERT_AT(FLT_RELATED_OBJECTS, Transaction, 0x28);
FLT_ASSERT_AT(FILE_OBJECT, FileName, 0x58);

#endif
