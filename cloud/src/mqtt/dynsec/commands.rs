//! The JSON of Mosquitto's dynamic-security control API, as far as the
//! cloud uses it: `{"commands": [...]}` published on
//! `$CONTROL/dynamic-security/v1`, answered by `{"responses": [...]}` on
//! `.../response`, one response per command, each carrying the command's
//! `correlationData` back. Field names are the plugin's (2.0.x).

use lastseen_shared::Secret;
use serde::{Deserialize, Serialize};

/// Where commands go.
pub(crate) const COMMAND_TOPIC: &str = "$CONTROL/dynamic-security/v1";
/// Where the plugin answers, to every subscriber allowed to read it.
pub(crate) const RESPONSE_TOPIC: &str = "$CONTROL/dynamic-security/v1/response";

/// What a role allows: one topic filter for one kind of access.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Acl {
    pub(crate) acltype: AclType,
    pub(crate) topic: String,
    pub(crate) allow: bool,
}

impl Acl {
    pub(crate) fn allow(acltype: AclType, topic: impl Into<String>) -> Self {
        Self {
            acltype,
            topic: topic.into(),
            allow: true,
        }
    }
}

/// The plugin's access kinds. "Send" is the client publishing, "Receive"
/// the broker delivering to it; "Literal" compares the SUBSCRIBE filter as
/// a string, "Pattern" matches it against a filter (both see `$share/...`
/// whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum AclType {
    PublishClientSend,
    PublishClientReceive,
    SubscribeLiteral,
    SubscribePattern,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RoleRef {
    pub(crate) rolename: String,
}

/// One command; `serde` writes the variant as `"command": "createRole"`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "command", rename_all = "camelCase")]
pub(crate) enum Command {
    CreateRole {
        rolename: String,
        textname: String,
        acls: Vec<Acl>,
    },
    /// Also ends the sessions of every client with this role
    /// (Mosquitto 2.0.11), unless it fails (e.g. the ACL exists).
    #[serde(rename = "addRoleACL")]
    AddRoleAcl {
        rolename: String,
        #[serde(flatten)]
        acl: Acl,
    },
    DeleteRole {
        rolename: String,
    },
    CreateClient {
        username: String,
        /// Only this client id may log in as `username`.
        clientid: String,
        password: Secret,
        textname: String,
        roles: Vec<RoleRef>,
    },
    GetClient {
        username: String,
    },
    /// Also ends the client's sessions (Mosquitto 2.0: "kick").
    SetClientPassword {
        username: String,
        password: Secret,
    },
    /// Also ends the client's sessions (Mosquitto 2.0.11).
    AddClientRole {
        username: String,
        rolename: String,
    },
    /// Also ends the client's sessions.
    DeleteClient {
        username: String,
    },
    ListClients {
        verbose: bool,
        count: i64,
        offset: i64,
    },
}

impl Command {
    /// The name in the `command` field, which responses repeat.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Command::CreateRole { .. } => "createRole",
            Command::AddRoleAcl { .. } => "addRoleACL",
            Command::DeleteRole { .. } => "deleteRole",
            Command::CreateClient { .. } => "createClient",
            Command::GetClient { .. } => "getClient",
            Command::SetClientPassword { .. } => "setClientPassword",
            Command::AddClientRole { .. } => "addClientRole",
            Command::DeleteClient { .. } => "deleteClient",
            Command::ListClients { .. } => "listClients",
        }
    }
}

/// A command with the tag its response will carry.
#[derive(Debug, Serialize)]
struct Tagged<'a> {
    #[serde(flatten)]
    command: &'a Command,
    #[serde(rename = "correlationData")]
    correlation: &'a str,
}

#[derive(Debug, Serialize)]
struct Request<'a> {
    commands: Vec<Tagged<'a>>,
}

/// The body of one publish on [`COMMAND_TOPIC`].
pub(crate) fn encode(commands: &[(String, Command)]) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&Request {
        commands: commands
            .iter()
            .map(|(correlation, command)| Tagged {
                command,
                correlation,
            })
            .collect(),
    })
}

/// The plugin's answer to one command: `error` set when it failed.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub(crate) struct Response {
    pub(crate) command: String,
    #[serde(default)]
    pub(crate) error: Option<String>,
    #[serde(default)]
    pub(crate) data: Option<serde_json::Value>,
    #[serde(rename = "correlationData", default)]
    pub(crate) correlation: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Responses {
    responses: Vec<Response>,
}

/// The responses in one publish on [`RESPONSE_TOPIC`].
pub(crate) fn decode(payload: &[u8]) -> Result<Vec<Response>, serde_json::Error> {
    Ok(serde_json::from_slice::<Responses>(payload)?.responses)
}

/// The errors the plugin reports for "already done", in Mosquitto 2.0.
pub(crate) mod errors {
    pub(crate) const ROLE_EXISTS: &str = "Role already exists";
    pub(crate) const ACL_EXISTS: &str = "ACL with this topic already exists";
    pub(crate) const CLIENT_EXISTS: &str = "Client already exists";
    pub(crate) const CLIENT_NOT_FOUND: &str = "Client not found";
    pub(crate) const ROLE_NOT_FOUND: &str = "Role not found";
}

/// One client in a verbose `listClients` answer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub(crate) struct ClientInfo {
    pub(crate) username: String,
    #[serde(default)]
    pub(crate) clientid: Option<String>,
    #[serde(default)]
    pub(crate) textname: Option<String>,
    #[serde(default)]
    pub(crate) roles: Vec<RoleRef>,
}

/// The `data` of a `getClient` answer.
#[derive(Debug, Deserialize)]
pub(crate) struct OneClient {
    pub(crate) client: ClientInfo,
}

/// The `data` of a verbose `listClients` answer.
#[derive(Debug, Deserialize)]
pub(crate) struct ClientList {
    #[serde(rename = "totalCount")]
    pub(crate) total: u64,
    pub(crate) clients: Vec<ClientInfo>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn commands_are_written_as_the_plugin_reads_them() {
        let commands = vec![
            (
                "c1".to_owned(),
                Command::CreateRole {
                    rolename: "r".into(),
                    textname: "t".into(),
                    acls: vec![Acl::allow(AclType::SubscribeLiteral, "a/b")],
                },
            ),
            (
                "c2".to_owned(),
                Command::AddRoleAcl {
                    rolename: "r".into(),
                    acl: Acl::allow(AclType::PublishClientSend, "a/+"),
                },
            ),
            (
                "c3".to_owned(),
                Command::CreateClient {
                    username: "d".into(),
                    clientid: "d".into(),
                    password: Secret::new("token"),
                    textname: "t".into(),
                    roles: vec![RoleRef {
                        rolename: "r".into(),
                    }],
                },
            ),
            (
                "c4".to_owned(),
                Command::ListClients {
                    verbose: true,
                    count: 10,
                    offset: 0,
                },
            ),
        ];
        let written: serde_json::Value =
            serde_json::from_slice(&encode(&commands).unwrap()).unwrap();
        assert_eq!(
            written,
            json!({"commands": [
                {"command": "createRole", "rolename": "r", "textname": "t", "correlationData": "c1",
                 "acls": [{"acltype": "subscribeLiteral", "topic": "a/b", "allow": true}]},
                {"command": "addRoleACL", "rolename": "r", "acltype": "publishClientSend",
                 "topic": "a/+", "allow": true, "correlationData": "c2"},
                {"command": "createClient", "username": "d", "clientid": "d", "password": "token",
                 "textname": "t", "roles": [{"rolename": "r"}], "correlationData": "c3"},
                {"command": "listClients", "verbose": true, "count": 10, "offset": 0,
                 "correlationData": "c4"},
            ]})
        );
        for (_, command) in &commands {
            let tag = serde_json::to_value(command).unwrap()["command"].clone();
            assert_eq!(tag, json!(command.name()));
        }
    }

    #[test]
    fn passwords_stay_out_of_debug_output() {
        let command = Command::SetClientPassword {
            username: "d".into(),
            password: Secret::new("the-device-token"),
        };
        assert!(!format!("{command:?}").contains("the-device-token"));
    }

    #[test]
    fn responses_carry_errors_data_and_correlation() {
        // As Mosquitto 2.0.11 answers (captured from the broker).
        let payload = br#"{"responses":[
            {"command":"listClients","data":{"totalCount":2,"clients":[
                {"username":"admin","textname":"Dynsec admin user","roles":[{"rolename":"admin"}],"groups":[]},
                {"username":"d","clientid":"d","roles":[],"groups":[]}]},"correlationData":"abc"},
            {"command":"createClient","error":"Client already exists","correlationData":"x2"},
            {"command":"createRole"}]}"#;
        let responses = decode(payload).unwrap();
        assert_eq!(responses.len(), 3);
        assert_eq!(responses[0].correlation.as_deref(), Some("abc"));
        let list: ClientList = serde_json::from_value(responses[0].data.clone().unwrap()).unwrap();
        assert_eq!(list.total, 2);
        assert_eq!(list.clients[1].clientid.as_deref(), Some("d"));
        assert_eq!(list.clients[0].roles[0].rolename, "admin");
        assert_eq!(responses[1].error.as_deref(), Some(errors::CLIENT_EXISTS));
        assert_eq!(responses[2].error, None);
        assert_eq!(responses[2].correlation, None);
        assert!(decode(b"{\"responses\": 3}").is_err());
    }
}
