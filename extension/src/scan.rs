//! `SELECT … FROM api_keys.api_key_verify(…)` without a FunctionScan
//! (issue 13).
//!
//! PostgreSQL 15 runs a function in FROM through a FunctionScan, which on
//! every execution looks the function's result type up and copies its
//! descriptor twice, compiles the call and its four arguments, puts the one
//! row verify returns into a tuplestore and reads it back: ~17,000
//! instructions, a third of a verify (callgrind, BENCHMARKS.md). The
//! select-list form pays none of it.
//!
//! A planner hook replaces the FunctionScan of a statement that is nothing
//! but such a call — the plan's top node, one call of the shipped
//! `api_key_verify`, no `WITH ORDINALITY`, no filter, its arguments
//! constants or parameters, its output columns columns of the call's row —
//! by a CustomScan whose scan tuple is the call's row. Every other
//! statement, and every call inside a larger one, keeps its FunctionScan.
//!
//! What the FunctionScan does for a call is done here: the EXECUTE
//! privilege check (and the object-access hook) on every execution,
//! `track_functions`, the arguments' evaluation, one call per scan (a rescan
//! re-reads the row: the arguments cannot change), backward fetches over the
//! row as a tuplestore allows them. The call itself is verify's own code
//! (`verify::verify_values`), with its values copied into the query's
//! memory instead of formed into a tuple and stored.
//!
//! The hook resolves no name: the function is recognised by its pg_proc row
//! (language C, this library's symbol, no SECURITY DEFINER, no SET), which
//! only a superuser can create. `api_keys.verify_custom_scan = off` turns it
//! off for statements planned after.

use std::ffi::{c_char, c_int, CStr};
use std::ptr;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::guc;
use crate::verify::{self, Args, VERIFICATION_COLUMNS};

/// `ClanguageId` (pg_language.dat): the fixed OID of language C.
const LANGUAGE_C: pg_sys::Oid = pg_sys::Oid::from_u32(13);
const SYMBOL: &[u8] = b"api_key_verify_c";
const LIBRARY: &[u8] = b"$libdir/api_keys";
const NAME: &CStr = c"api_key_verify";

/// Method tables hold C string pointers, which are not `Sync`; they are
/// immutable statics that PostgreSQL only reads.
#[repr(transparent)]
struct Methods<T>(T);
// SAFETY: never written after initialisation; backends are single-threaded.
unsafe impl<T> Sync for Methods<T> {}

static SCAN_METHODS: Methods<pg_sys::CustomScanMethods> = Methods(pg_sys::CustomScanMethods {
    CustomName: NAME.as_ptr(),
    CreateCustomScanState: Some(create_scan_state),
});

static EXEC_METHODS: Methods<pg_sys::CustomExecMethods> = Methods(pg_sys::CustomExecMethods {
    CustomName: NAME.as_ptr(),
    BeginCustomScan: Some(begin_scan),
    ExecCustomScan: Some(exec_scan),
    EndCustomScan: Some(end_scan),
    ReScanCustomScan: Some(rescan),
    MarkPosCustomScan: None,
    RestrPosCustomScan: None,
    EstimateDSMCustomScan: None,
    InitializeDSMCustomScan: None,
    ReInitializeDSMCustomScan: None,
    InitializeWorkerCustomScan: None,
    ShutdownCustomScan: None,
    ExplainCustomScan: Some(explain_scan),
});

static mut PREV_PLANNER: pg_sys::planner_hook_type = None;

/// Installs the planner hook (chaining any previous one) and registers the
/// scan's methods; from `_PG_init`, once per backend.
pub fn init() {
    // SAFETY: _PG_init runs once per backend, on its main thread.
    unsafe {
        pg_sys::RegisterCustomScanMethods(&SCAN_METHODS.0);
        PREV_PLANNER = pg_sys::planner_hook;
        pg_sys::planner_hook = Some(plan);
    }
}

mod raw {
    use pgrx::pg_sys;
    extern "C-unwind" {
        pub fn standard_planner(
            parse: *mut pg_sys::Query,
            query_string: *const std::ffi::c_char,
            cursor_options: std::ffi::c_int,
            bound_params: pg_sys::ParamListInfo,
        ) -> *mut pg_sys::PlannedStmt;
    }
}

/// The planner hook. Not `#[pg_guard]`, and the planner is called without
/// pgrx's guard: an ERROR raised while planning (a function folded at plan
/// time raising, a cancel) longjmps over this frame, which holds nothing
/// with a destructor, straight to PostgreSQL's handler, as without the
/// hook. A guard would turn it into a Rust panic and back, and the client
/// would get a Rust backtrace with it. Only the rewrite, which runs Rust,
/// is guarded.
unsafe extern "C-unwind" fn plan(
    parse: *mut pg_sys::Query,
    query_string: *const c_char,
    cursor_options: c_int,
    bound_params: pg_sys::ParamListInfo,
) -> *mut pg_sys::PlannedStmt {
    let stmt = match PREV_PLANNER {
        Some(prev) => prev(parse, query_string, cursor_options, bound_params),
        None => raw::standard_planner(parse, query_string, cursor_options, bound_params),
    };
    rewrite(stmt);
    stmt
}

#[pg_guard]
unsafe extern "C-unwind" fn rewrite(stmt: *mut pg_sys::PlannedStmt) {
    if guc::VERIFY_CUSTOM_SCAN.get() && !stmt.is_null() {
        if let Some(scan) = custom_scan(stmt) {
            (*stmt).planTree = scan.cast();
        }
    }
}

unsafe fn list_len(list: *const pg_sys::List) -> usize {
    if list.is_null() {
        0
    } else {
        (*list).length as usize
    }
}

unsafe fn list_nth<T>(list: *const pg_sys::List, n: usize) -> *mut T {
    (*(*list).elements.add(n)).ptr_value.cast()
}

unsafe fn is_a<T>(node: *const T, tag: pg_sys::NodeTag) -> bool {
    !node.is_null() && (*node.cast::<pg_sys::Node>()).type_ == tag
}

/// The CustomScan replacing `stmt`'s plan, when that plan is a FunctionScan
/// of one call of the shipped verify and nothing else (see the module).
unsafe fn custom_scan(stmt: *mut pg_sys::PlannedStmt) -> Option<*mut pg_sys::CustomScan> {
    if (*stmt).commandType != pg_sys::CmdType::CMD_SELECT {
        return None;
    }
    let plan = (*stmt).planTree;
    if !is_a(plan, pg_sys::NodeTag::T_FunctionScan) {
        return None;
    }
    let fs = plan.cast::<pg_sys::FunctionScan>();
    let p = &(*plan);
    if !p.qual.is_null()
        || !p.lefttree.is_null()
        || !p.righttree.is_null()
        || !p.initPlan.is_null()
        || (*fs).funcordinality
        || list_len((*fs).functions) != 1
        || list_len(p.targetlist) == 0
    {
        return None;
    }
    let rtfunc = list_nth::<pg_sys::RangeTblFunction>((*fs).functions, 0);
    let func = (*rtfunc).funcexpr.cast::<pg_sys::FuncExpr>();
    if !is_a(func, pg_sys::NodeTag::T_FuncExpr) || (*func).funcretset {
        return None;
    }
    // Constants and the statement's parameters only: nothing that changes
    // during the execution, nothing that reads another plan.
    let args = (*func).args;
    if !(3..=4).contains(&list_len(args)) {
        return None;
    }
    let plain_arg = |i| {
        let arg = list_nth::<pg_sys::Node>(args, i);
        is_a(arg, pg_sys::NodeTag::T_Const)
            || (is_a(arg, pg_sys::NodeTag::T_Param)
                && (*arg.cast::<pg_sys::Param>()).paramkind == pg_sys::ParamKind::PARAM_EXTERN)
    };
    if !(0..list_len(args)).all(plain_arg) {
        return None;
    }
    // Output columns: columns of the call's row, nothing computed.
    let scanrelid = (*fs).scan.scanrelid;
    let column = |i| {
        let tle = list_nth::<pg_sys::TargetEntry>(p.targetlist, i);
        let var = (*tle).expr.cast::<pg_sys::Var>();
        is_a(var, pg_sys::NodeTag::T_Var)
            && (*var).varno as pg_sys::Index == scanrelid
            && (*var).varlevelsup == 0
            && (1..=VERIFICATION_COLUMNS as i16).contains(&(*var).varattno)
    };
    if !(0..list_len(p.targetlist)).all(column) || !is_shipped_verify((*func).funcid) {
        return None;
    }
    // The scan tuple is the call's row: one Var of the entry per column,
    // from the type's descriptor (checked against what verify fills). The
    // output columns become references to it, so that a statement reading
    // every column in order needs no projection, and any other reads them
    // by position.
    let row = verify::row_type((*func).funcresulttype);
    let attrs = (*row).attrs.as_slice((*row).natts as usize);
    let mut scan_tlist: *mut pg_sys::List = ptr::null_mut();
    for (i, a) in attrs.iter().enumerate() {
        let var = pg_sys::makeVar(
            scanrelid as c_int,
            (i + 1) as pg_sys::AttrNumber,
            a.atttypid,
            a.atttypmod,
            a.attcollation,
            0,
        );
        let tle = pg_sys::makeTargetEntry(
            var.cast(),
            (i + 1) as pg_sys::AttrNumber,
            ptr::null_mut(),
            false,
        );
        scan_tlist = pg_sys::lappend(scan_tlist, tle.cast());
    }
    let mut tlist: *mut pg_sys::List = ptr::null_mut();
    for i in 0..list_len(p.targetlist) {
        let tle = list_nth::<pg_sys::TargetEntry>(p.targetlist, i);
        let var = (*tle).expr.cast::<pg_sys::Var>();
        let index_var = pg_sys::makeVar(
            pg_sys::INDEX_VAR,
            (*var).varattno,
            (*var).vartype,
            (*var).vartypmod,
            (*var).varcollid,
            0,
        );
        let out = pg_sys::makeTargetEntry(
            index_var.cast(),
            (*tle).resno,
            (*tle).resname,
            (*tle).resjunk,
        );
        (*out).ressortgroupref = (*tle).ressortgroupref;
        (*out).resorigtbl = (*tle).resorigtbl;
        (*out).resorigcol = (*tle).resorigcol;
        tlist = pg_sys::lappend(tlist, out.cast());
    }
    let cscan =
        pg_sys::palloc0(std::mem::size_of::<pg_sys::CustomScan>()).cast::<pg_sys::CustomScan>();
    let c = &mut (*cscan).scan.plan;
    c.type_ = pg_sys::NodeTag::T_CustomScan;
    c.startup_cost = p.startup_cost;
    c.total_cost = p.total_cost;
    c.plan_rows = p.plan_rows;
    c.plan_width = p.plan_width;
    c.parallel_aware = false;
    c.parallel_safe = p.parallel_safe;
    c.async_capable = false;
    c.plan_node_id = p.plan_node_id;
    c.targetlist = tlist;
    c.extParam = p.extParam;
    c.allParam = p.allParam;
    // An RTE_FUNCTION cannot be opened as a relation: the scan tuple is
    // described by custom_scan_tlist instead.
    (*cscan).scan.scanrelid = 0;
    (*cscan).custom_scan_tlist = scan_tlist;
    // Backward too, as a FunctionScan (its tuplestore) can: a cursor
    // declared without SCROLL may then fetch backward.
    (*cscan).flags = pg_sys::CUSTOMPATH_SUPPORT_BACKWARD_SCAN;
    (*cscan).custom_exprs = pg_sys::lappend(ptr::null_mut(), func.cast());
    // EXPLAIN names the entry's columns (ExplainPreScanNode).
    (*cscan).custom_relids = pg_sys::bms_make_singleton(scanrelid as c_int);
    (*cscan).methods = &SCAN_METHODS.0;
    Some(cscan)
}

/// Whether `funcid` is `api_key_verify` as the extension declares it: the C
/// symbol of this library, without SECURITY DEFINER or SET (the benchmark's
/// differently declared copies keep the FunctionScan).
unsafe fn is_shipped_verify(funcid: pg_sys::Oid) -> bool {
    let tuple = pg_sys::SearchSysCache1(
        pg_sys::SysCacheIdentifier::PROCOID as c_int,
        pg_sys::Datum::from(funcid),
    );
    if tuple.is_null() {
        return false;
    }
    let form = pg_sys::GETSTRUCT(tuple).cast::<pg_sys::FormData_pg_proc>();
    let attr = |attno: u32| {
        let mut isnull = false;
        let d = pg_sys::SysCacheGetAttr(
            pg_sys::SysCacheIdentifier::PROCOID as c_int,
            tuple,
            attno as pg_sys::AttrNumber,
            &mut isnull,
        );
        (!isnull).then_some(d)
    };
    let text_is = |attno: u32, want: &[u8]| {
        attr(attno).is_some_and(|d| {
            let v = pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr());
            let len = pgrx::varlena::varsize_any_exhdr(v);
            std::slice::from_raw_parts(pgrx::varlena::vardata_any(v) as *const u8, len) == want
        })
    };
    let ours = (*form).prolang == LANGUAGE_C
        && !(*form).proretset
        && !(*form).prosecdef
        && (*form).prokind == pg_sys::PROKIND_FUNCTION as c_char
        && attr(pg_sys::Anum_pg_proc_proconfig).is_none()
        && text_is(pg_sys::Anum_pg_proc_prosrc, SYMBOL)
        && text_is(pg_sys::Anum_pg_proc_probin, LIBRARY);
    pg_sys::ReleaseSysCache(tuple);
    ours
}

/// Where a scan is: BEFORE its row, ON it (just returned it) or AFTER it.
const BEFORE: u8 = 0;
const ON: u8 = 1;
const AFTER: u8 = 2;

/// Executor state: a CustomScanState first, as ExecInitCustomScan expects.
#[repr(C)]
struct VerifyScanState {
    css: pg_sys::CustomScanState,
    func: *mut pg_sys::FuncExpr,
    /// Each argument: an ExprState for a parameter, null for a constant.
    arg_states: [*mut pg_sys::ExprState; 4],
    nargs: usize,
    /// The row, its by-reference values copied into the query's memory.
    values: [pg_sys::Datum; VERIFICATION_COLUMNS],
    nulls: [bool; VERIFICATION_COLUMNS],
    called: bool,
    position: u8,
}

#[pg_guard]
unsafe extern "C-unwind" fn create_scan_state(
    _cscan: *mut pg_sys::CustomScan,
) -> *mut pg_sys::Node {
    let state = pg_sys::palloc0(std::mem::size_of::<VerifyScanState>()).cast::<VerifyScanState>();
    (*state).css.ss.ps.type_ = pg_sys::NodeTag::T_CustomScanState;
    (*state).css.methods = &EXEC_METHODS.0;
    state.cast()
}

#[pg_guard]
unsafe extern "C-unwind" fn begin_scan(
    node: *mut pg_sys::CustomScanState,
    _estate: *mut pg_sys::EState,
    _eflags: c_int,
) {
    let state = node.cast::<VerifyScanState>();
    let cscan = (*node).ss.ps.plan.cast::<pg_sys::CustomScan>();
    let func = list_nth::<pg_sys::FuncExpr>((*cscan).custom_exprs, 0);
    (*state).func = func;
    // The EXECUTE privilege and the object-access hook, as the FunctionScan
    // checks them (init_sexpr) on every execution.
    let funcid = (*func).funcid;
    let acl = pg_sys::pg_proc_aclcheck(funcid, pg_sys::GetUserId(), pg_sys::ACL_EXECUTE as _);
    if acl != pg_sys::AclResult::ACLCHECK_OK {
        pg_sys::aclcheck_error(
            acl,
            pg_sys::ObjectType::OBJECT_FUNCTION,
            pg_sys::get_func_name(funcid),
        );
    }
    if std::ptr::addr_of!(pg_sys::object_access_hook)
        .read()
        .is_some()
    {
        pg_sys::RunFunctionExecuteHook(funcid);
    }
    // The scan slot (ExecInitCustomScan made it from custom_scan_tlist)
    // holds the row: its type must still be what verify fills.
    let row = verify::row_type((*func).funcresulttype);
    let slot_desc = (*(*node).ss.ss_ScanTupleSlot).tts_tupleDescriptor;
    if (*slot_desc).natts != (*row).natts {
        error!("api_keys: the plan of this statement no longer matches api_keys.verification: prepare it again");
    }
    let args = (*func).args;
    (*state).nargs = list_len(args).min(4);
    for i in 0..(*state).nargs {
        let arg = list_nth::<pg_sys::Node>(args, i);
        if !is_a(arg, pg_sys::NodeTag::T_Const) {
            (*state).arg_states[i] = pg_sys::ExecInitExpr(arg.cast(), &mut (*node).ss.ps);
        }
    }
}

/// The call's arguments, evaluated in the per-tuple memory.
unsafe fn args(state: *mut VerifyScanState) -> Args {
    let econtext = (*state).css.ss.ps.ps_ExprContext;
    let list = (*(*state).func).args;
    let mut values: [Option<pg_sys::Datum>; 4] = [None; 4];
    for (i, value) in values.iter_mut().enumerate().take((*state).nargs) {
        let arg = list_nth::<pg_sys::Node>(list, i);
        *value = if (*state).arg_states[i].is_null() {
            let c = arg.cast::<pg_sys::Const>();
            (!(*c).constisnull).then_some((*c).constvalue)
        } else {
            let mut isnull = false;
            let d =
                pg_sys::ExecEvalExprSwitchContext((*state).arg_states[i], econtext, &mut isnull);
            (!isnull).then_some(d)
        };
    }
    Args {
        token: values[0],
        required: values[1],
        environment: values[2],
        otp: values[3],
    }
}

/// Calls verify, as the FunctionScan would (in the per-tuple memory, with
/// `track_functions`), and keeps the row's values in the query's memory.
unsafe fn call(state: *mut VerifyScanState) {
    let node = &mut (*state).css;
    let econtext = node.ss.ps.ps_ExprContext;
    let query_cxt = (*node.ss.ps.state).es_query_cxt;
    let desc = (*node.ss.ss_ScanTupleSlot).tts_tupleDescriptor;
    pg_sys::MemoryContextReset((*econtext).ecxt_per_tuple_memory);
    let args = args(state);
    // track_functions = all counts C functions (fmgr gives them TRACK_FUNC_PL)
    let mut flinfo: pg_sys::FmgrInfo = std::mem::zeroed();
    flinfo.fn_oid = (*(*state).func).funcid;
    flinfo.fn_stats = pg_sys::TrackFunctionsLevel::TRACK_FUNC_PL as u8;
    let mut fcinfo: pg_sys::FunctionCallInfoBaseData = std::mem::zeroed();
    fcinfo.flinfo = &mut flinfo;
    let mut usage: pg_sys::PgStat_FunctionCallUsage = std::mem::zeroed();
    pg_sys::pgstat_init_function_usage(&mut fcinfo, &mut usage);
    let old = pg_sys::MemoryContextSwitchTo((*econtext).ecxt_per_tuple_memory);
    let (values, nulls) = verify::verify_values(&args, |values, nulls| {
        copy_values(desc, query_cxt, values, nulls);
        (*values, *nulls)
    });
    pg_sys::MemoryContextSwitchTo(old);
    pg_sys::pgstat_end_function_usage(&mut usage, true);
    (*state).values = values;
    (*state).nulls = nulls;
    (*state).called = true;
}

/// Copies the by-reference values of a row of `desc` into `cxt`, in one
/// allocation; a value stored out of line is fetched (as a composite datum
/// flattens it).
///
/// # Safety
/// `values` and `nulls` are a row of `desc` (verify checked its types).
unsafe fn copy_values(
    desc: pg_sys::TupleDesc,
    cxt: pg_sys::MemoryContext,
    values: &mut [pg_sys::Datum; VERIFICATION_COLUMNS],
    nulls: &[bool; VERIFICATION_COLUMNS],
) {
    let attrs = (*desc).attrs.as_slice(VERIFICATION_COLUMNS);
    let align = |n: usize| (n + 7) & !7;
    let mut sizes = [0usize; VERIFICATION_COLUMNS];
    let mut total = 0;
    for i in 0..VERIFICATION_COLUMNS {
        if nulls[i] || attrs[i].attbyval {
            continue;
        }
        let v = values[i].cast_mut_ptr::<pg_sys::varlena>();
        if attrs[i].attlen == -1 && pgrx::varlena::varatt_is_1b_e(v) {
            // out of line: fetched (and decompressed) into `cxt`
            let old = pg_sys::MemoryContextSwitchTo(cxt);
            values[i] = pg_sys::Datum::from(pg_sys::pg_detoast_datum_packed(v));
            pg_sys::MemoryContextSwitchTo(old);
            continue;
        }
        sizes[i] = if attrs[i].attlen == -1 {
            pgrx::varlena::varsize_any(v)
        } else {
            attrs[i].attlen as usize
        };
        total += align(sizes[i]);
    }
    if total == 0 {
        return;
    }
    let mut to = pg_sys::MemoryContextAlloc(cxt, total).cast::<u8>();
    for i in 0..VERIFICATION_COLUMNS {
        if sizes[i] > 0 {
            ptr::copy_nonoverlapping(values[i].cast_mut_ptr::<u8>(), to, sizes[i]);
            values[i] = pg_sys::Datum::from(to);
            to = to.add(align(sizes[i]));
        }
    }
}

/// ExecClearTuple (tuptable.h, static inline). Clearing a slot has no
/// error path (the virtual and heap slots' `clear` free and reset).
unsafe fn clear(slot: *mut pg_sys::TupleTableSlot) -> *mut pg_sys::TupleTableSlot {
    if let Some(clear) = (*(*slot).tts_ops).clear {
        clear(slot);
    }
    slot
}

#[pg_guard]
unsafe extern "C-unwind" fn exec_scan(
    node: *mut pg_sys::CustomScanState,
) -> *mut pg_sys::TupleTableSlot {
    let state = node.cast::<VerifyScanState>();
    let ps = &mut (*node).ss.ps;
    let econtext = ps.ps_ExprContext;
    let slot = (*node).ss.ss_ScanTupleSlot;
    let forward = (*ps.state).es_direction != pg_sys::ScanDirection::BackwardScanDirection;
    // a fetch from BEFORE (forward) or AFTER (backward) reaches the row;
    // any other moves past it
    let (from, past) = if forward {
        (BEFORE, AFTER)
    } else {
        (AFTER, BEFORE)
    };
    let proj = ps.ps_ProjInfo;
    if (*state).position != from {
        (*state).position = past;
        return clear(if proj.is_null() {
            slot
        } else {
            (*proj).pi_state.resultslot
        });
    }
    if !(*state).called {
        call(state);
    }
    (*state).position = ON;
    clear(slot);
    let n = (*(*slot).tts_tupleDescriptor).natts as usize;
    ptr::copy_nonoverlapping((*state).values.as_ptr(), (*slot).tts_values, n);
    ptr::copy_nonoverlapping((*state).nulls.as_ptr(), (*slot).tts_isnull, n);
    pg_sys::ExecStoreVirtualTuple(slot);
    if proj.is_null() {
        return slot;
    }
    // ExecProject (executor.h, static inline)
    pg_sys::MemoryContextReset((*econtext).ecxt_per_tuple_memory);
    (*econtext).ecxt_scantuple = slot;
    let result = clear((*proj).pi_state.resultslot);
    let mut isnull = false;
    pg_sys::ExecEvalExprSwitchContext(&mut (*proj).pi_state, econtext, &mut isnull);
    (*result).tts_flags &= !(pg_sys::TTS_FLAG_EMPTY as u16);
    (*result).tts_nvalid = (*(*result).tts_tupleDescriptor).natts as pg_sys::AttrNumber;
    result
}

#[pg_guard]
unsafe extern "C-unwind" fn rescan(node: *mut pg_sys::CustomScanState) {
    // The arguments are constants or the statement's parameters: the row
    // stays what it was, and is read again (ExecReScanFunctionScan's rule).
    (*node.cast::<VerifyScanState>()).position = BEFORE;
}

#[pg_guard]
unsafe extern "C-unwind" fn end_scan(_node: *mut pg_sys::CustomScanState) {
    // The slots are the executor's; the row lives in the query's memory.
}

/// EXPLAIN VERBOSE shows the call, as it does for a FunctionScan.
#[pg_guard]
unsafe extern "C-unwind" fn explain_scan(
    node: *mut pg_sys::CustomScanState,
    ancestors: *mut pg_sys::List,
    es: *mut pg_sys::ExplainState,
) {
    if !(*es).verbose {
        return;
    }
    let plan = (*node).ss.ps.plan;
    let cscan = plan.cast::<pg_sys::CustomScan>();
    let context = pg_sys::set_deparse_context_plan((*es).deparse_cxt, plan, ancestors);
    let text = pg_sys::deparse_expression(
        list_nth::<pg_sys::Node>((*cscan).custom_exprs, 0),
        context,
        true,
        false,
    );
    pg_sys::ExplainPropertyText(c"Function Call".as_ptr(), text, es);
}
