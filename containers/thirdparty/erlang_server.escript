#!/usr/bin/env escript
%% A thin SSH server on Erlang/OTP's ssh application (ssh:daemon/3).
%%
%% Usage: escript erlang_server.escript PORT
%%
%% Listens on 127.0.0.1:PORT (or on $SSHSPEC_LISTEN:PORT: 0.0.0.0 inside a target image). Credentials come from the environment: SSHSPEC_USER (required),
%% SSHSPEC_PASSWORD (password and keyboard-interactive auth; unset disables both) and
%% SSHSPEC_AUTHORIZED_KEYS (an authorized_keys file for publickey auth; optional). Fresh ed25519,
%% ECDSA P-256 and RSA 3072 host keys are made with public_key:generate_key/1 at start and served
%% from memory by this module as the daemon's key_cb (ssh_server_key_api). Prints `READY <port>` on
%% stdout once listening; logs go to stderr; runs until SIGTERM, then kills its children and removes
%% its temp dir.
%%
%% This module is also the daemon's ssh_cli (an ssh_server_channel callback): `exec` runs
%% `/bin/sh -c COMMAND` and `shell` runs `/bin/sh`. Erlang ports cannot half-close a child's stdin
%% nor read its stderr apart from stdout, so the child reads stdin from a FIFO fed by `cat` (a second
%% port, closed at the client's EOF) and writes stderr to a FIFO read by `cat` (a third port); its
%% stdout is the main port. An Erlang port reports a child killed by signal N as status 128+N, and
%% ssh_connection has no exit-signal call, so that is sent as exit-status 128+N. pty-req and env are
%% refused; the `sftp` subsystem is the library's default (ssh_sftpd), others are refused. Every
%% other setting is the library's default except parallel_login (see the ssh:daemon call).
-mode(compile).

-export([host_key/2, is_auth_key/3]).                                % ssh_server_key_api
-export([init/1, handle_msg/2, handle_ssh_msg/2, terminate/2]).     % ssh_server_channel
-export([handle_event/2, handle_call/2, handle_info/2, code_change/3]). % gen_event (SIGTERM)

main([PortArg]) ->
    Port = list_to_integer(PortArg),
    User = case os:getenv("SSHSPEC_USER") of
               false -> fail("SSHSPEC_USER is not set");
               "" -> fail("SSHSPEC_USER is not set");
               U -> U
           end,
    Password = os:getenv("SSHSPEC_PASSWORD"),
    {ok, Listen} = inet:parse_address(case os:getenv("SSHSPEC_LISTEN") of
                                          false -> "127.0.0.1";
                                          "" -> "127.0.0.1";
                                          A -> A
                                      end),
    AuthKeys = case os:getenv("SSHSPEC_AUTHORIZED_KEYS") of
                   false -> none;
                   "" -> none;
                   File ->
                       {ok, Bin} = file:read_file(File),
                       [K || {K, _Attrs} <- ssh_file:decode(Bin, auth_keys)]
               end,
    %% Everything the library logs goes to stderr; stdout carries only the READY line.
    ok = logger:remove_handler(default),
    ok = logger:add_handler(default, logger_std_h, #{config => #{type => standard_error}}),
    Tmp = string:trim(os:cmd("mktemp -d /tmp/sshspec-erlang.XXXXXX")),
    children = ets:new(children, [named_table, public, set]),
    persistent_term:put({?MODULE, conf}, #{user => User, auth_keys => AuthKeys, tmp => Tmp}),
    persistent_term:put({?MODULE, host_keys},
                        #{ed25519 => public_key:generate_key({namedCurve, ed25519}),
                          ecdsa => public_key:generate_key({namedCurve, secp256r1}),
                          rsa => public_key:generate_key({rsa, 3072, 65537})}),
    {ok, _} = application:ensure_all_started(ssh),
    Methods = [M || {M, On} <- [{"publickey", AuthKeys =/= none},
                                {"keyboard-interactive", Password =/= false},
                                {"password", Password =/= false}], On],
    PwdFun = fun(U, P) -> Password =/= false andalso U =:= User andalso P =:= Password end,
    {ok, Daemon} = ssh:daemon(Listen, Port,
                              [{key_cb, {?MODULE, []}},
                               {auth_methods, string:join(Methods, ",")},
                               {pwdfun, PwdFun},
                               {auth_method_kb_interactive_data, {"", "", "Password: ", false}},
                               {ssh_cli, {?MODULE, [cli]}},
                               %% The one non-default setting, about scheduling only: by default the
                               %% daemon accepts no connection while another is still logging in, so
                               %% one silent client would stall every other connection for 30 s+.
                               {parallel_login, true}]),
    {ok, Info} = ssh:daemon_info(Daemon),
    log("Erlang/OTP ~s ssh ~s listening on ~s:~p",
        [erlang:system_info(otp_release), ssh_vsn(), inet:ntoa(Listen), proplists:get_value(port, Info)]),
    %% SIGTERM: instead of the default handler's init:stop(), tell this process.
    os:set_signal(sigterm, handle),
    ok = gen_event:swap_handler(erl_signal_server, {erl_signal_handler, []}, {?MODULE, self()}),
    io:format("READY ~b~n", [Port]),
    receive sigterm -> ok end,
    log("SIGTERM: stopping", []),
    catch ssh:stop_daemon(Daemon),
    [os:cmd("kill -TERM -" ++ integer_to_list(Pid) ++ " 2>/dev/null") || {Pid} <- ets:tab2list(children)],
    file:del_dir_r(Tmp),
    log("stopped", []),
    erlang:halt(0);
main(_) ->
    fail("usage: erlang_server.escript PORT").

fail(Msg) ->
    io:format(standard_error, "erlang_server: ~s~n", [Msg]),
    erlang:halt(2).

log(Fmt, Args) ->
    {{Y, Mo, D}, {H, Mi, S}} = calendar:local_time(),
    io:format(standard_error, "~4..0b-~2..0b-~2..0b ~2..0b:~2..0b:~2..0b erlang_server " ++ Fmt ++ "~n",
              [Y, Mo, D, H, Mi, S | Args]).

ssh_vsn() ->
    {ok, V} = application:get_key(ssh, vsn),
    V.

%%% ssh_server_key_api

host_key(Alg, _DaemonOptions) ->
    Keys = persistent_term:get({?MODULE, host_keys}),
    case Alg of
        'ssh-ed25519' -> {ok, maps:get(ed25519, Keys)};
        'ecdsa-sha2-nistp256' -> {ok, maps:get(ecdsa, Keys)};
        'rsa-sha2-512' -> {ok, maps:get(rsa, Keys)};
        'rsa-sha2-256' -> {ok, maps:get(rsa, Keys)};
        'ssh-rsa' -> {ok, maps:get(rsa, Keys)};
        _ -> {error, no_key}
    end.

is_auth_key(Key, User, _DaemonOptions) ->
    #{user := Allowed, auth_keys := Keys} = persistent_term:get({?MODULE, conf}),
    Ok = Keys =/= none andalso User =:= Allowed andalso lists:member(Key, Keys),
    log("publickey for ~p: ~s", [User, case Ok of true -> "accepted"; false -> "rejected" end]),
    Ok.

%%% gen_event handler in erl_signal_server

init({Pid, _SwapResult}) when is_pid(Pid) -> {ok, Pid};
%%% ssh_server_channel (the CLI of each session channel)
init([cli]) ->
    process_flag(trap_exit, true),
    {ok, #{}}.

handle_event(sigterm, Pid) -> Pid ! sigterm, {ok, Pid};
handle_event(_Signal, Pid) -> {ok, Pid}.

handle_call(_Request, Pid) -> {ok, ok, Pid}.

handle_info(_Info, Pid) -> {ok, Pid}.

code_change(_OldVsn, State, _Extra) -> {ok, State}.

handle_msg({ssh_channel_up, Id, CM}, S) ->
    {ok, S#{id => Id, cm => CM}};
handle_msg({A, {data, Data}}, #{main := A, cm := CM, id := Id} = S) ->
    send(ssh_connection:send(CM, Id, Data), S);
handle_msg({E, {data, Data}}, #{err := E, cm := CM, id := Id} = S) ->
    send(ssh_connection:send(CM, Id, 1, Data), S);
handle_msg({P, {exit_status, Status}}, #{main := A, err := E, os_pids := Pids} = S) ->
    ets:delete(children, maps:get(P, Pids)),
    case P of
        A -> finish(S#{status => Status});
        E -> finish(S#{err_done => true});
        _ -> {ok, S}  % the stdin feeder
    end;
handle_msg(_Other, S) ->
    %% The ports' 'EXIT' messages.
    {ok, S}.

handle_ssh_msg({ssh_cm, CM, {exec, Id, WantReply, Cmd}}, S) ->
    %% The command's bytes as the client sent them (OTP 25 hands them over as a byte list); a
    %% binary port argument reaches the child unchanged.
    Command = case Cmd of
                  B when is_binary(B) -> B;
                  L -> try list_to_binary(L) catch error:badarg -> unicode:characters_to_binary(L) end
              end,
    log("exec ~p", [Command]),
    start(CM, Id, WantReply, "exec /bin/sh -c \"$1\" <\"$2\" 2>\"$3\"", Command, S);
handle_ssh_msg({ssh_cm, CM, {shell, Id, WantReply}}, S) ->
    log("shell", []),
    start(CM, Id, WantReply, "exec /bin/sh <\"$2\" 2>\"$3\"", <<>>, S);
handle_ssh_msg({ssh_cm, CM, {pty, Id, WantReply, _}}, S) ->
    ssh_connection:reply_request(CM, WantReply, failure, Id),
    {ok, S};
handle_ssh_msg({ssh_cm, CM, {env, Id, WantReply, _Var, _Value}}, S) ->
    ssh_connection:reply_request(CM, WantReply, failure, Id),
    {ok, S};
handle_ssh_msg({ssh_cm, CM, {data, Id, Type, Data}}, S) ->
    case {Type, S} of
        {0, #{feed := Feed}} -> catch erlang:port_command(Feed, Data);
        _ -> ok
    end,
    ssh_connection:adjust_window(CM, Id, byte_size(Data)),
    {ok, S};
handle_ssh_msg({ssh_cm, _CM, {eof, _Id}}, S) ->
    close_feed(S),
    {ok, S};
handle_ssh_msg({ssh_cm, _CM, {closed, Id}}, S) ->
    {stop, Id, S};
handle_ssh_msg({ssh_cm, _CM, _Msg}, S) ->
    %% window_change, signal, ...: ignored.
    {ok, S}.

terminate(_Reason, S) ->
    %% A command still running keeps its entry in `children`: it is killed when the server stops.
    %% Its FIFOs too stay until then: it may not have opened them yet.
    [(catch port_close(P)) || K <- [feed, main, err], {ok, P} <- [maps:find(K, S)]],
    case S of
        #{status := _, fifos := Fifos} -> [file:delete(F) || F <- Fifos];
        _ -> ok
    end,
    ok.

start(CM, Id, WantReply, _Script, _Command, #{main := _} = S) ->
    ssh_connection:reply_request(CM, WantReply, failure, Id),
    {ok, S};
start(CM, Id, WantReply, Script, Command, S) ->
    #{tmp := Tmp} = persistent_term:get({?MODULE, conf}),
    N = integer_to_list(erlang:unique_integer([positive])),
    In = filename:join(Tmp, "in." ++ N),
    Err = filename:join(Tmp, "err." ++ N),
    "" = os:cmd("mkfifo -m 600 '" ++ In ++ "' '" ++ Err ++ "'"),
    Spawn = fun(Sh, Args) ->
                    P = open_port({spawn_executable, "/bin/sh"},
                                  [{args, ["-c", Sh, "sh" | Args]}, binary, stream, use_stdio, exit_status]),
                    {os_pid, OsPid} = erlang:port_info(P, os_pid),
                    ets:insert(children, {OsPid}),
                    {P, OsPid}
            end,
    {Feed, FeedPid} = Spawn("exec cat >\"$1\" 2>/dev/null", [In]),
    {ErrPort, ErrPid} = Spawn("exec cat <\"$1\"", [Err]),
    {Main, MainPid} = Spawn(Script, [Command, In, Err]),
    ssh_connection:reply_request(CM, WantReply, success, Id),
    {ok, S#{main => Main, feed => Feed, err => ErrPort, fifos => [In, Err],
            os_pids => #{Main => MainPid, Feed => FeedPid, ErrPort => ErrPid}}}.

send(ok, S) ->
    {ok, S};
send({error, Reason}, #{id := Id} = S) ->
    %% The channel is gone: closing the ports gives the command SIGPIPE on its next write.
    log("channel closed early: ~p", [Reason]),
    {stop, Id, S}.

close_feed(#{feed := Feed}) -> catch port_close(Feed);
close_feed(_) -> ok.

finish(#{status := Status, err_done := true, cm := CM, id := Id} = S) ->
    log("command exited with status ~b", [Status]),
    close_feed(S),
    ssh_connection:send_eof(CM, Id),
    ssh_connection:exit_status(CM, Id, Status),
    {stop, Id, S};
finish(S) ->
    {ok, S}.
